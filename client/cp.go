package client

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"minidock/api"
	"minidock/archive"
)

// cp copies between a container and this machine through the archive
// endpoints, as docker cp does: the daemon sends or takes a tar whose
// entries start with the base name of the path; the side that extracts
// renames that first element when the destination is a new name or an
// existing file. Extracting here goes through archive.Unpack rooted at
// the destination directory, so no entry of the tar lands outside it.

func cmdCp(c *Client, args []string) error {
	fs := newFlags("cp")
	follow := fs.Bool("L", false, "follow a symlink given as the source")
	keepOwner := fs.Bool("a", false, "archive mode: keep the files' uid and gid (into a container)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitError(2)
	}
	srcCtr, srcPath := splitContainerPath(fs.Arg(0))
	dstCtr, dstPath := splitContainerPath(fs.Arg(1))
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	case srcCtr != "":
		return copyFromContainer(c, srcCtr, srcPath, dstPath, *follow)
	case dstCtr != "":
		return copyToContainer(c, srcPath, dstCtr, dstPath, *follow, *keepOwner)
	}
	return errors.New("must specify at least one container source: CONTAINER:PATH")
}

// splitContainerPath splits CONTAINER:PATH; a path that starts with "/"
// or "." is local even with a colon in it, as in docker.
func splitContainerPath(arg string) (string, string) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return ctr, p
}

// statPath is HEAD /containers/{id}/archive?path=: nil, nil when the
// path does not exist.
func statPath(c *Client, ctr, p string) (*api.PathStat, error) {
	resp, err := c.Do(context.Background(), "HEAD", "/containers/"+url.PathEscape(ctr)+"/archive", url.Values{"path": {p}}, nil, "")
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusNotFound {
			return nil, err
		}
		// A HEAD reply has no message: no such container, or no such path?
		if err := c.JSON(context.Background(), "GET", "/containers/"+url.PathEscape(ctr)+"/json", nil, nil, nil); err != nil {
			return nil, err
		}
		return nil, nil
	}
	resp.Body.Close()
	return decodePathStat(resp.Header.Get(api.PathStatHeader))
}

func decodePathStat(h string) (*api.PathStat, error) {
	data, err := base64.StdEncoding.DecodeString(h)
	var st api.PathStat
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("bad %s header from the daemon: %v", api.PathStatHeader, err)
	}
	return &st, nil
}

// renameFirst renames the first element of tar names from old to as.
func renameFirst(name, old, as string) string {
	trimmed := strings.TrimSuffix(name, "/")
	if old == as || (trimmed != old && !strings.HasPrefix(trimmed, old+"/")) {
		return name
	}
	return as + strings.TrimPrefix(name, old)
}

func copyFromContainer(c *Client, ctr, srcPath, dst string, follow bool) error {
	as := ""
	if follow {
		st, err := statPath(c, ctr, srcPath)
		if err != nil {
			return err
		}
		if st != nil && st.LinkTarget != "" {
			as, srcPath = path.Base(srcPath), st.LinkTarget
		}
	}
	resp, err := c.Do(context.Background(), "GET", "/containers/"+url.PathEscape(ctr)+"/archive", url.Values{"path": {srcPath}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if dst == "-" {
		_, err := io.Copy(os.Stdout, resp.Body)
		return err
	}
	st, err := decodePathStat(resp.Header.Get(api.PathStatHeader))
	if err != nil {
		return err
	}
	srcIsDir := os.FileMode(st.Mode).IsDir()
	if as == "" {
		as = st.Name
	}
	dir := dst
	di, err := os.Stat(dst)
	switch {
	case err == nil && di.IsDir():
	case err == nil && srcIsDir:
		return fmt.Errorf("cannot copy a directory to the file %s", dst)
	case err == nil || os.IsNotExist(err):
		if err != nil && !srcIsDir && strings.HasSuffix(dst, string(filepath.Separator)) {
			return fmt.Errorf("destination directory %s does not exist", dst)
		}
		dir, as = filepath.Dir(dst), filepath.Base(dst)
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("destination directory %s: %w", dir, err)
		}
	default:
		return err
	}
	uid, gid := os.Getuid(), os.Getgid()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Retar(pw, resp.Body, func(h *tar.Header) error {
			h.Name = renameFirst(h.Name, st.Name, as)
			if h.Typeflag == tar.TypeLink {
				h.Linkname = renameFirst(h.Linkname, st.Name, as)
			}
			// the files are the caller's, as with docker cp
			h.Uid, h.Gid = uid, gid
			if path.Clean(h.Name) == "." {
				return nil
			}
			return refuseDirSwap(filepath.Join(dir, h.Name), h.Typeflag == tar.TypeDir)
		}))
	}()
	n, err := archive.Unpack(dir, pr, &archive.UnpackOptions{Root: dir})
	pr.CloseWithError(errors.New("extraction stopped"))
	if err != nil {
		return fmt.Errorf("copy %s:%s to %s: %w", ctr, srcPath, dst, err)
	}
	fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", humanSize(n), dst)
	return nil
}

// refuseDirSwap keeps an extraction from replacing a directory with a
// file or the reverse (docker's noOverwriteDirNonDir).
func refuseDirSwap(p string, isDir bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil
	}
	switch {
	case fi.IsDir() && !isDir:
		return fmt.Errorf("cannot overwrite directory %s with non-directory", p)
	case !fi.IsDir() && isDir:
		return fmt.Errorf("cannot overwrite non-directory %s with directory", p)
	}
	return nil
}

func copyToContainer(c *Client, src, ctr, dstPath string, follow, keepOwner bool) error {
	q := url.Values{"noOverwriteDirNonDir": {"true"}}
	if keepOwner {
		q.Set("copyUIDGID", "true")
	}
	put := func(dir string, body io.Reader) error {
		q.Set("path", dir)
		resp, err := c.Do(context.Background(), "PUT", "/containers/"+url.PathEscape(ctr)+"/archive", q, body, "application/x-tar")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if src == "-" {
		// a tar on stdin, extracted into the directory dstPath
		return put(dstPath, os.Stdin)
	}
	srcDir, srcBase := filepath.Dir(src), filepath.Base(src)
	if strings.HasSuffix(src, string(filepath.Separator)+".") {
		srcDir, srcBase = strings.TrimSuffix(src, "."), "."
	}
	as := srcBase
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if follow && fi.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(src)
		if err != nil {
			return err
		}
		srcDir, srcBase = filepath.Dir(target), filepath.Base(target)
		if fi, err = os.Stat(target); err != nil {
			return err
		}
	}
	st, err := statPath(c, ctr, dstPath)
	if err != nil {
		return err
	}
	if st != nil && st.LinkTarget != "" {
		// a symlink in the container: its target is the destination
		dstPath = st.LinkTarget
		if st, err = statPath(c, ctr, dstPath); err != nil {
			return err
		}
	}
	dir := dstPath
	switch {
	case st != nil && os.FileMode(st.Mode).IsDir():
	case st != nil && fi.IsDir():
		return fmt.Errorf("cannot copy a directory to the file %s:%s", ctr, dstPath)
	default:
		if st == nil && !fi.IsDir() && strings.HasSuffix(dstPath, "/") {
			return fmt.Errorf("destination directory %s:%s does not exist", ctr, dstPath)
		}
		dir, as = path.Dir(dstPath), path.Base(dstPath)
	}
	rename := func(n string) string { return renameFirst(n, srcBase, as) }
	if srcBase == "." {
		// the directory's content: below "." names have no "./"
		rename = func(n string) string {
			if n == "." {
				return as
			}
			return as + "/" + n
		}
	}
	pr, pw := io.Pipe()
	counter := &countWriter{w: pw}
	go func() { pw.CloseWithError(archive.WriteEntry(counter, srcDir, srcBase, rename)) }()
	err = put(dir, pr)
	pr.CloseWithError(errors.New("upload stopped"))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "Successfully copied %s to %s:%s\n", humanSize(counter.n), ctr, dstPath)
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
