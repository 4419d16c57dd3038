// Package archive reads and writes tar streams of file trees, the format
// of image layers, `docker cp`, export and import. Writing walks a tree by
// descriptors (WriteTree, WriteEntry, and WriteDiff, which turns
// overlayfs's whiteouts into the OCI layer format's ".wh." entries);
// reading extracts with openat2 so that no entry lands outside its
// directory (Unpack, which turns ".wh." entries back into overlayfs
// whiteouts for a layer, or extracts plainly into an existing directory
// for cp); Retar rewrites a stream's headers on the way through. It knows
// nothing of images, mounts or HTTP: package overlay mounts the layers it
// unpacks, package image stores them, and both the daemon and the client
// use it. See docs/overlayfs.md.
package archive
