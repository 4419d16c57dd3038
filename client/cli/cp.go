package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"minidock/archive"
	"minidock/client"
)

// cp copies between a container and this machine through the archive
// endpoints, as docker cp does: the daemon sends or takes a tar whose
// entries start with the base name of the path; the side that extracts
// renames that first element when the destination is a new name or an
// existing file. Extracting here goes through archive.Unpack rooted at
// the destination directory, so no entry of the tar lands outside it.

func newCpCommand(cli *CLI) *cobra.Command {
	var follow, keepOwner bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tminidock cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			srcCtr, srcPath := splitContainerPath(args[0])
			dstCtr, dstPath := splitContainerPath(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr != "":
				return cli.copyFromContainer(cmd.Context(), c, srcCtr, srcPath, dstPath, follow)
			case dstCtr != "":
				return cli.copyToContainer(cmd.Context(), c, srcPath, dstCtr, dstPath, follow, keepOwner)
			}
			return errors.New("must specify at least one container source: CONTAINER:PATH")
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	cmd.Flags().BoolVarP(&keepOwner, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	return cmd
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

// renameFirst renames the first element of tar names from old to as.
func renameFirst(name, old, as string) string {
	trimmed := strings.TrimSuffix(name, "/")
	if old == as || (trimmed != old && !strings.HasPrefix(trimmed, old+"/")) {
		return name
	}
	return as + strings.TrimPrefix(name, old)
}

func (cli *CLI) copyFromContainer(ctx context.Context, c *client.Client, ctr, srcPath, dst string, follow bool) error {
	as := ""
	if follow {
		st, err := c.ContainerStatPath(ctx, ctr, srcPath)
		if err != nil {
			return err
		}
		if st != nil && st.LinkTarget != "" {
			as, srcPath = path.Base(srcPath), st.LinkTarget
		}
	}
	content, st, err := c.CopyFromContainer(ctx, ctr, srcPath)
	if err != nil {
		return err
	}
	defer content.Close()
	if dst == "-" {
		_, err := io.Copy(cli.Out, content)
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
		pw.CloseWithError(archive.Retar(pw, content, func(h *tar.Header) error {
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
	fmt.Fprintf(cli.Err, "Successfully copied %s to %s\n", humanSize(n), dst)
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

func (cli *CLI) copyToContainer(ctx context.Context, c *client.Client, src, ctr, dstPath string, follow, keepOwner bool) error {
	put := func(dir string, body io.Reader) error {
		return c.CopyToContainer(ctx, ctr, dir, body, client.CopyToOptions{NoOverwriteDirNonDir: true, CopyUIDGID: keepOwner})
	}
	if src == "-" {
		// a tar on stdin, extracted into the directory dstPath
		return put(dstPath, cli.In)
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
	st, err := c.ContainerStatPath(ctx, ctr, dstPath)
	if err != nil {
		return err
	}
	if st != nil && st.LinkTarget != "" {
		// a symlink in the container: its target is the destination
		dstPath = st.LinkTarget
		if st, err = c.ContainerStatPath(ctx, ctr, dstPath); err != nil {
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
	fmt.Fprintf(cli.Err, "Successfully copied %s to %s:%s\n", humanSize(counter.n), ctr, dstPath)
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
