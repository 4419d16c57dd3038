package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"minidock/api"
	"minidock/build/dockerignore"
	"minidock/client"
)

// newBuildCommand is `build [OPTIONS] PATH | -`: the context (the
// directory PATH, less what its .dockerignore excludes, or a tar or a
// lone Dockerfile on stdin) goes to POST /build as a tar, and the build's
// messages are printed as they come: each step, whether it came from the
// cache, the final ID.
func newBuildCommand(cli *CLI) *cobra.Command {
	var (
		tags, buildArgs, labels listValue
		file, target, network   string
		platform                string
		noCache, quiet, pull    bool
		remove, forceRemove     bool
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ImageBuildOptions{Tags: tags, Target: target, NoCache: noCache, Quiet: quiet, Pull: pull,
				KeepSteps: !remove, ForceRemove: forceRemove, NetworkMode: network, Platform: platform}
			o.BuildArgs = map[string]*string{}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok { // NAME alone: its value from the environment, if set
					val, set := os.LookupEnv(k)
					if !set {
						o.BuildArgs[k] = nil
						continue
					}
					v = val
				}
				o.BuildArgs[k] = &v
			}
			if len(labels) > 0 {
				o.Labels = map[string]string{}
				for _, l := range labels {
					k, v, _ := strings.Cut(l, "=")
					o.Labels[k] = v
				}
			}
			bc, err := cli.buildContext(args[0], file)
			if err != nil {
				return err
			}
			o.Dockerfile = bc.dockerfile
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(bc.write(pw)) }()
			defer pr.Close()
			msgs, err := cli.client.ImageBuild(cmd.Context(), pr, o)
			if err != nil {
				return err
			}
			_, err = client.EachBuildMessage(msgs, func(m api.BuildMessage) {
				switch {
				case m.Stream != "":
					fmt.Fprint(cli.Out, m.Stream)
				case m.Status != "" && m.ID != "":
					fmt.Fprintf(cli.Out, "%s: %s\n", m.ID, m.Status)
				case m.Status != "":
					fmt.Fprintln(cli.Out, m.Status)
				}
			})
			var be *client.BuildError
			if errors.As(err, &be) {
				fmt.Fprintln(cli.Err, be.Message)
				if be.Code > 0 {
					return statusError(be.Code)
				}
				return statusError(1)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.VarP(&tags, "tag", "t", "Name and optionally a tag in the \"name:tag\" format")
	f.StringVarP(&file, "file", "f", "", "Name of the Dockerfile (default: \"PATH/Dockerfile\"; \"-\": read it from stdin)")
	f.Var(&buildArgs, "build-arg", "Set build-time variables")
	f.StringVar(&target, "target", "", "Set the target build stage to build")
	f.BoolVar(&noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.Var(&labels, "label", "Set metadata for an image")
	f.BoolVar(&pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.StringVar(&network, "network", "default", "Set the networking mode for the RUN instructions during build (default, host, none)")
	f.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	f.BoolVar(&remove, "rm", true, "Remove intermediate containers after a successful build")
	f.BoolVar(&forceRemove, "force-rm", false, "Always remove intermediate containers")
	return cmd
}

// buildContext is what a build sends: a directory (less what its
// .dockerignore excludes), or a tar read as it is, plus a Dockerfile from
// elsewhere (-f - or a path outside the directory) added under a name of
// its own.
type buildContext struct {
	dir        string // the context directory, or ""
	ignore     *dockerignore.Matcher
	tarStream  io.Reader // a context tar (PATH "-"), or nil
	extra      []byte    // a Dockerfile to add to the context
	dockerfile string    // the Dockerfile's name in the context
}

// buildContext reads PATH and -f as docker does: PATH "-" is stdin, a
// tar (plain or compressed) or else a Dockerfile with no context; -f "-"
// is the Dockerfile from stdin; -f FILE is relative to the current
// directory, sent under a name of its own when it lies outside PATH.
func (cli *CLI) buildContext(path, file string) (*buildContext, error) {
	bc := &buildContext{}
	if path == "-" {
		if file == "-" {
			return nil, errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		in := bufio.NewReader(cli.In)
		head, _ := in.Peek(512)
		if isArchive(head) {
			bc.tarStream, bc.dockerfile = in, file
			return bc, nil
		}
		df, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("read the Dockerfile from stdin: %w", err)
		}
		bc.extra, bc.dockerfile = df, "Dockerfile"
		return bc, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("unable to prepare context: context must be a directory: %s", path)
	}
	bc.dir = path
	if data, err := os.ReadFile(filepath.Join(path, ".dockerignore")); err == nil {
		if bc.ignore, err = dockerignore.Parse(string(data)); err != nil {
			return nil, err
		}
	}
	switch {
	case file == "-":
		df, err := io.ReadAll(cli.In)
		if err != nil {
			return nil, fmt.Errorf("read the Dockerfile from stdin: %w", err)
		}
		bc.extra = df
	case file != "":
		abs, _ := filepath.Abs(file)
		root, _ := filepath.Abs(path)
		if rel, err := filepath.Rel(root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			bc.dockerfile = filepath.ToSlash(rel)
			return bc, nil
		}
		df, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("unable to prepare context: %w", err)
		}
		bc.extra = df
	default:
		bc.dockerfile = "Dockerfile"
		return bc, nil
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	bc.dockerfile = ".dockerfile." + hex.EncodeToString(rnd[:])
	return bc, nil
}

// isArchive recognises a tar (ustar magic at 257), gzip, bzip2 or xz.
func isArchive(head []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0}} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

// write writes the context tar to w: a tar from stdin as it is (a
// Dockerfile from elsewhere cannot be added to it), or the directory's
// files, owned by root as docker sends them, then the extra Dockerfile.
func (bc *buildContext) write(w io.Writer) error {
	if bc.tarStream != nil {
		_, err := io.Copy(w, bc.tarStream)
		return err
	}
	tw := tar.NewWriter(w)
	if bc.dir != "" {
		err := filepath.WalkDir(bc.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(bc.dir, p)
			rel = filepath.ToSlash(rel)
			if rel == "." {
				return nil
			}
			// the Dockerfile and .dockerignore go whatever .dockerignore says:
			// the builder reads them
			if rel != bc.dockerfile && rel != ".dockerignore" && bc.ignore.Excluded(rel) {
				if d.IsDir() && !bc.ignore.HasExceptions() {
					return filepath.SkipDir
				}
				return nil // an exception may keep something below
			}
			return addToTar(tw, p, rel)
		})
		if err != nil {
			return fmt.Errorf("build context %s: %w", bc.dir, err)
		}
	}
	if bc.extra != nil {
		hdr := &tar.Header{Name: bc.dockerfile, Mode: 0o644, Size: int64(len(bc.extra)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(bc.extra); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addToTar writes the file p as the entry name, owned by root.
func addToTar(tw *tar.Writer, p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = name, 0, 0, "", ""
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
