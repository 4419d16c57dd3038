package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"minidock/api"
	"minidock/client"
)

// newImageCommand is `image ...`: the image verbs under their long names.
func newImageCommand(cli *CLI) *cobra.Command {
	ls := twin(newImagesCommand(cli), "images")
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list"}
	rm := twin(newRmiCommand(cli), "rmi")
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove"}
	return newManagementCommand("image", "Manage images",
		twin(newBuildCommand(cli), "build"), twin(newHistoryCommand(cli), "history"), twin(newImportCommand(cli), "import"), newInspectCommand(cli, "image"),
		twin(newLoadCommand(cli), "load"), ls, newImagePruneCommand(cli), twin(newPullCommand(cli), "pull"),
		twin(newPushCommand(cli), "push"), rm, twin(newSaveCommand(cli), "save"),
		twin(newTagCommand(cli), "tag"),
	)
}

func newImagesCommand(cli *CLI) *cobra.Command {
	var (
		quiet, digests, all bool
		format              string
	)
	cmd := &cobra.Command{
		Use:   "images [OPTIONS]",
		Short: "List images",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			list, err := c.ImageList(cmd.Context(), all)
			if err != nil {
				return err
			}
			if quiet {
				for _, im := range list {
					fmt.Fprintln(cli.Out, shortID(im.ID))
				}
				return nil
			}
			if format == "" {
				format = "table"
			}
			table := imagesTable
			if digests {
				table = imagesDigestsTable
			}
			return printFormatted(cli.Out, format, table, imageItems(list), imageHeaders)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVar(&digests, "digests", false, "Show digests")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a Go template, \"table\", \"table TEMPLATE\" or \"json\"")
	return cmd
}

// openInput opens name for reading, stdin for "" or "-".
func (cli *CLI) openInput(name string) (io.ReadCloser, error) {
	if name == "" || name == "-" {
		return io.NopCloser(cli.In), nil
	}
	return os.Open(name)
}

// printMessages prints a progress stream (load, import) as docker does,
// failing on an error message in it.
func (cli *CLI) printMessages(s *client.Messages) error {
	return client.EachMessage(s, func(m api.JSONMessage) {
		if m.Stream != "" {
			fmt.Fprint(cli.Out, m.Stream)
		} else if m.Status != "" {
			fmt.Fprintln(cli.Out, m.Status)
		}
	})
}

func newImportCommand(cli *CLI) *cobra.Command {
	var changes listValue
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			in, err := cli.openInput(args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			o := client.ImageImportOptions{Changes: changes}
			if len(args) == 2 {
				o.Repo, o.Tag = splitRepoTag(args[1])
			}
			msgs, err := c.ImageImport(cmd.Context(), in, o)
			if err != nil {
				return err
			}
			return cli.printMessages(msgs)
		},
	}
	cmd.Flags().VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	return cmd
}

func newLoadCommand(cli *CLI) *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			in, err := cli.openInput(input)
			if err != nil {
				return err
			}
			defer in.Close()
			msgs, err := c.ImageLoad(cmd.Context(), in)
			if err != nil {
				return err
			}
			return cli.printMessages(msgs)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	return cmd
}

func newSaveCommand(cli *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(os.Stdout) {
				return fmt.Errorf("cowardly refusing to save to a terminal: use -o FILE or redirect")
			}
			c := cli.client
			tar, err := c.ImageSave(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer tar.Close()
			return cli.writeOutput(output, tar)
		},
		ValidArgsFunction: completeImages(cli),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func newTagCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			repo, tag := splitRepoTag(args[1])
			if tag == "" {
				tag = "latest"
			}
			return c.ImageTag(cmd.Context(), args[0], repo, tag)
		},
		ValidArgsFunction: completeImages(cli),
	}
}

func newHistoryCommand(cli *CLI) *cobra.Command {
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			hist, err := c.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cli.Out, 0, 0, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			}
			for _, h := range hist {
				id, by := h.ID, strings.Join(strings.Fields(h.CreatedBy), " ")
				if !noTrunc {
					if id != "<missing>" {
						id = shortID(id)
					}
					if r := []rune(by); len(r) > 45 {
						by = string(r[:44]) + "…"
					}
				}
				if quiet {
					fmt.Fprintln(tw, id)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, ago(time.Unix(h.Created, 0)), by, humanSize(h.Size), h.Comment)
			}
			return tw.Flush()
		},
		ValidArgsFunction: completeImages(cli),
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

func newRmiCommand(cli *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			failed := false
			for _, n := range args {
				items, err := c.ImageRemove(cmd.Context(), n, force)
				if err != nil {
					fmt.Fprintln(cli.Err, err)
					failed = true
					continue
				}
				cli.printDeleted(items, false)
			}
			if failed {
				return statusError(1)
			}
			return nil
		},
		ValidArgsFunction: completeImages(cli),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	return cmd
}

// printDeleted prints what an image removal did: "Untagged: x" for rmi,
// "untagged: x" for prune, as docker words them.
func (cli *CLI) printDeleted(items []api.ImageDeleteItem, lower bool) {
	untagged, deleted := "Untagged: ", "Deleted: "
	if lower {
		untagged, deleted = "untagged: ", "deleted: "
	}
	for _, it := range items {
		if it.Untagged != "" {
			fmt.Fprintln(cli.Out, untagged+it.Untagged)
		}
		if it.Deleted != "" {
			fmt.Fprintln(cli.Out, deleted+it.Deleted)
		}
	}
}

func newImagePruneCommand(cli *CLI) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			what := "all dangling images"
			if all {
				what = "all images without at least one container associated to them"
			}
			if !cli.confirm(force, what) {
				return nil
			}
			rep, err := c.ImagesPrune(cmd.Context(), all)
			if err != nil {
				return err
			}
			if len(rep.ImagesDeleted) > 0 {
				fmt.Fprintln(cli.Out, "Deleted Images:")
				cli.printDeleted(rep.ImagesDeleted, true)
				fmt.Fprintln(cli.Out)
			}
			fmt.Fprintln(cli.Out, "Total reclaimed space: "+humanSize(rep.SpaceReclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
