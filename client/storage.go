package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"minidock/api"
)

// The commands on a container's files and on images: export, diff,
// commit, history, image ..., container prune.

func cmdExport(c *Client, args []string) error {
	fs := newFlags("export")
	output := fs.String("o", "", "write to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	if *output == "" && isTerminal(os.Stdout) {
		return fmt.Errorf("cowardly refusing to write a tar to a terminal: give -o FILE or redirect stdout")
	}
	resp, err := c.Do(context.Background(), "GET", "/containers/"+url.PathEscape(fs.Arg(0))+"/export", nil, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return writeOutput(*output, resp.Body)
}

// writeOutput copies r to the file name (through a temporary file, so a
// failed copy leaves no half file), or to stdout when name is "".
func writeOutput(name string, r io.Reader) error {
	if name == "" {
		_, err := io.Copy(os.Stdout, r)
		return err
	}
	f, err := os.CreateTemp(dirOf(name), ".minidock-")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func cmdDiff(c *Client, args []string) error {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: minidock %s\n", commands["diff"].usage)
		return exitError(2)
	}
	var changes []api.ContainerChange
	if err := c.JSON(context.Background(), "GET", "/containers/"+url.PathEscape(args[0])+"/changes", nil, nil, &changes); err != nil {
		return err
	}
	for _, ch := range changes {
		fmt.Printf("%s %s\n", [...]string{"C", "A", "D"}[ch.Kind%3], ch.Path)
	}
	return nil
}

func cmdCommit(c *Client, args []string) error {
	fs := newFlags("commit")
	message := fs.String("m", "", "commit message")
	author := fs.String("a", "", `author ("Name <email>")`)
	var changes listFlag
	fs.Var(&changes, "c", "Dockerfile instruction to apply (repeatable)")
	fs.Var(&changes, "change", "same as -c")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return exitError(2)
	}
	q := url.Values{"container": {fs.Arg(0)}, "comment": {*message}, "author": {*author}, "changes": changes}
	setRepoTag(q, fs.Arg(1))
	var id api.IDResponse
	if err := c.JSON(context.Background(), "POST", "/commit", q, nil, &id); err != nil {
		return err
	}
	fmt.Println(id.ID)
	return nil
}

// setRepoTag sets repo= and tag= from REPOSITORY[:TAG], if given.
func setRepoTag(q url.Values, ref string) {
	if ref == "" {
		return
	}
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	q.Set("repo", repo)
	q.Set("tag", tag)
}

func cmdHistory(c *Client, args []string) error {
	fs := newFlags("history")
	quiet := fs.Bool("q", false, "only IDs")
	noTrunc := fs.Bool("no-trunc", false, "do not shorten IDs and commands")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	var hist []api.ImageHistoryItem
	if err := c.JSON(context.Background(), "GET", "/images/"+fs.Arg(0)+"/history", nil, nil, &hist); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	if !*quiet {
		fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
	}
	for _, h := range hist {
		id, by := h.ID, strings.Join(strings.Fields(h.CreatedBy), " ")
		if !*noTrunc {
			if id != "<missing>" {
				id = shortID(id)
			}
			if r := []rune(by); len(r) > 45 {
				by = string(r[:44]) + "…"
			}
		}
		if *quiet {
			fmt.Fprintln(tw, id)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, ago(time.Unix(h.Created, 0)), by, humanSize(h.Size), h.Comment)
	}
	return tw.Flush()
}

// cmdImage is `image inspect|history|rm|prune|ls`.
func cmdImage(c *Client, args []string) error {
	sub := map[string]func(*Client, []string) error{
		"inspect": func(c *Client, args []string) error {
			return cmdInspect(c, append([]string{"--type", "image"}, args...))
		},
		"history": cmdHistory, "rm": cmdRmi, "prune": cmdImagePrune, "ls": cmdImages, "import": cmdImport, "load": cmdLoad,
	}
	return subcommand(c, "image", sub, args)
}

// cmdContainer is `container prune` (and the container verbs by their
// long names: container ls, container inspect, ...).
func cmdContainer(c *Client, args []string) error {
	sub := map[string]func(*Client, []string) error{
		"prune": cmdContainerPrune, "ls": cmdPs, "inspect": func(c *Client, args []string) error {
			return cmdInspect(c, append([]string{"--type", "container"}, args...))
		},
		"cp": cmdCp, "export": cmdExport, "diff": cmdDiff, "commit": cmdCommit, "rm": cmdRm,
	}
	return subcommand(c, "container", sub, args)
}

func subcommand(c *Client, name string, sub map[string]func(*Client, []string) error, args []string) error {
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintf(os.Stderr, "usage: minidock %s\n", commands[name].usage)
		return exitError(2)
	}
	return sub[args[0]](c, args[1:])
}

func cmdRmi(c *Client, args []string) error {
	fs := newFlags("rmi")
	force := fs.Bool("f", false, "remove even when in use or tagged several times")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *force {
		q.Set("force", "1")
	}
	failed := false
	for _, n := range fs.Args() {
		var items []api.ImageDeleteItem
		if err := c.JSON(context.Background(), "DELETE", "/images/"+n, q, nil, &items); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
			continue
		}
		printDeleted(items, false)
	}
	if failed {
		return exitError(1)
	}
	return nil
}

// printDeleted prints what an image removal did: "Untagged: x" for rmi,
// "untagged: x" for prune, as docker words them.
func printDeleted(items []api.ImageDeleteItem, lower bool) {
	untagged, deleted := "Untagged: ", "Deleted: "
	if lower {
		untagged, deleted = "untagged: ", "deleted: "
	}
	for _, it := range items {
		if it.Untagged != "" {
			fmt.Println(untagged + it.Untagged)
		}
		if it.Deleted != "" {
			fmt.Println(deleted + it.Deleted)
		}
	}
}

// confirm asks on the terminal, unless force.
func confirm(force bool, what string) bool {
	if force {
		return true
	}
	fmt.Printf("WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] ", what)
	var answer string
	fmt.Scanln(&answer)
	return strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")
}

func cmdImagePrune(c *Client, args []string) error {
	fs := newFlags("image")
	all := fs.Bool("a", false, "every image no container uses, not only dangling ones")
	force := fs.Bool("f", false, "do not ask")
	if err := fs.Parse(args); err != nil {
		return err
	}
	what := "all dangling images"
	q := url.Values{}
	if *all {
		what = "all images without at least one container associated to them"
		q.Set("filters", `{"dangling":["false"]}`)
	}
	if !confirm(*force, what) {
		return nil
	}
	var rep api.ImagesPruneReport
	if err := c.JSON(context.Background(), "POST", "/images/prune", q, nil, &rep); err != nil {
		return err
	}
	if len(rep.ImagesDeleted) > 0 {
		fmt.Println("Deleted Images:")
		printDeleted(rep.ImagesDeleted, true)
		fmt.Println()
	}
	fmt.Println("Total reclaimed space: " + humanSize(rep.SpaceReclaimed))
	return nil
}

func cmdContainerPrune(c *Client, args []string) error {
	fs := newFlags("container")
	force := fs.Bool("f", false, "do not ask")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !confirm(*force, "all stopped containers") {
		return nil
	}
	var rep api.ContainersPruneReport
	if err := c.JSON(context.Background(), "POST", "/containers/prune", nil, nil, &rep); err != nil {
		return err
	}
	if len(rep.ContainersDeleted) > 0 {
		fmt.Println("Deleted Containers:")
		for _, id := range rep.ContainersDeleted {
			fmt.Println(id)
		}
		fmt.Println()
	}
	fmt.Println("Total reclaimed space: " + humanSize(rep.SpaceReclaimed))
	return nil
}
