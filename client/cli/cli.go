// Package cli is minidock's command line, `minidock run ...`, `minidock
// ps`, on spf13/cobra and pflag as docker's own is: docker's verbs, flag
// names and spellings (-d, --detach), its grouped help and its exit codes
// (125 when the command line is wrong or a container could not be made,
// the container's own code for run, start -a and exec). Every command
// reaches the daemon through the typed API client, package client.
//
// The other roles of the binary (daemon, shim, runtime, init) are picked
// by cmd/minidock before this package is reached.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"minidock/client"
)

// Main runs the command line `minidock [-H HOST] COMMAND ...` and returns
// the process's exit code.
func Main(args []string) int {
	return run(&CLI{Out: os.Stdout, Err: os.Stderr, In: os.Stdin}, args)
}

func run(cli *CLI, args []string) int {
	root := newRootCommand(cli)
	root.SetArgs(args)
	return exitCode(cli.Err, root, root.Execute())
}

// CLI is what every command shares: the streams and the daemon's client.
type CLI struct {
	Out, Err io.Writer
	In       io.Reader
	conn     connection // -H and TLS (connect.go)
	client   *client.Client
}

// API is the client of the daemon named by -H, MINIDOCK_HOST,
// DOCKER_HOST or the default socket (connect.go), made on first use:
// before a command runs (commands use cli.client), or when completion
// needs names.
func (cli *CLI) API() (*client.Client, error) {
	if cli.client != nil {
		return cli.client, nil
	}
	cfg, err := cli.conn.config()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	cli.client = c
	return c, nil
}

// The groups of the top-level help, as docker's.
const (
	groupCommon     = "common"
	groupManagement = "management"
)

func newRootCommand(cli *CLI) *cobra.Command {
	// commands are listed in the order they are added: docker's order for
	// the common ones, alphabetical for the rest
	cobra.EnableCommandSorting = false
	root := &cobra.Command{
		Use:   "minidock [OPTIONS] COMMAND [ARG...]",
		Short: "A small Docker: containers from the kernel up",
		// flags before the command (-H) are the root's; those after it
		// are the command's, as in docker
		TraverseChildren:      true,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		// every command's client, once -H is known
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			_, err := cli.API()
			return err
		},
	}
	cli.conn.addFlags(root.Flags())
	root.AddGroup(&cobra.Group{ID: groupCommon, Title: "Common Commands:"},
		&cobra.Group{ID: groupManagement, Title: "Management Commands:"})
	root.AddCommand(
		// Common Commands, in docker's order
		inGroup(groupCommon, newRunCommand(cli), newExecCommand(cli), newPsCommand(cli), newBuildCommand(cli),
			newPullCommand(cli), newPushCommand(cli), newImagesCommand(cli), newLoginCommand(cli), newLogoutCommand(cli),
			newVersionCommand(cli), newInfoCommand(cli))...,
	)
	root.AddCommand(inGroup(groupManagement, newContainerCommand(cli), newImageCommand(cli), newNetworkCommand(cli), newVolumeCommand(cli))...)
	root.AddCommand(
		newCheckCommand(cli), newCommitCommand(cli), newCpCommand(cli), newCreateCommand(cli), newDiffCommand(cli), newEventsCommand(cli),
		newExplainCommand(cli), newExportCommand(cli), newHistoryCommand(cli), newImportCommand(cli), newInspectCommand(cli, ""),
		newKillCommand(cli), newLoadCommand(cli), newLogsCommand(cli), newPauseCommand(cli), newPortCommand(cli),
		newRenameCommand(cli), newRestartCommand(cli), newRmCommand(cli), newRmiCommand(cli), newSaveCommand(cli),
		newStartCommand(cli), newStatsCommand(cli), newStopCommand(cli), newTagCommand(cli), newTopCommand(cli),
		newUnpauseCommand(cli), newWaitCommand(cli),
	)
	root.SetIn(cli.In)
	root.SetOut(cli.Out)
	root.SetErr(cli.Err)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	setDocker(root)
	return root
}

func inGroup(id string, cmds ...*cobra.Command) []*cobra.Command {
	for _, c := range cmds {
		c.GroupID = id
	}
	return cmds
}

// newManagementCommand is a command of subcommands (container, image,
// network): alone it prints its help, with an unknown subcommand it fails.
func newManagementCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// setDocker gives every command of the tree docker's manners: the same
// help layout, "--help" without -h where -h means something else
// (run -h HOST), flag errors that say where to look, no "[flags]" in the
// usage line.
func setDocker(cmd *cobra.Command) {
	cmd.DisableFlagsInUseLine = true
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &flagError{cmd: c, err: err} })
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) { printHelp(c.OutOrStdout(), c) })
	if cmd.Flags().Lookup("help") == nil {
		help := "Print usage"
		if cmd.Flags().ShorthandLookup("h") == nil {
			cmd.Flags().BoolP("help", "h", false, help)
		} else {
			cmd.Flags().Bool("help", false, help)
		}
	}
	for _, c := range cmd.Commands() {
		setDocker(c)
	}
}

// printHelp writes docker's help layout: usage line, description,
// aliases, the commands by group (at the top), the options.
func printHelp(w io.Writer, cmd *cobra.Command) {
	fmt.Fprintf(w, "\nUsage:  %s\n\n", cmd.UseLine())
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	fmt.Fprintf(w, "%s\n", desc)
	if aliases := commandAliases(cmd); len(aliases) > 1 {
		fmt.Fprintf(w, "\nAliases:\n  %s\n", strings.Join(aliases, ", "))
	}
	if cmd.HasAvailableSubCommands() {
		groups := append(cmd.Groups(), &cobra.Group{ID: "", Title: "Commands:"})
		for _, g := range groups {
			var lines []string
			for _, c := range cmd.Commands() {
				if c.GroupID == g.ID && c.IsAvailableCommand() {
					lines = append(lines, fmt.Sprintf("  %-11s %s", c.Name(), c.Short))
				}
			}
			if len(lines) > 0 {
				fmt.Fprintf(w, "\n%s\n%s\n", g.Title, strings.Join(lines, "\n"))
			}
		}
	}
	if flags := visibleFlags(cmd.LocalNonPersistentFlags()); flags.HasAvailableFlags() {
		title := "Options:"
		if !cmd.HasParent() {
			title = "Global Options:"
		}
		fmt.Fprintf(w, "\n%s\n%s", title, flags.FlagUsagesWrapped(100))
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for more information on a command.\n", cmd.CommandPath())
	}
	if !cmd.HasParent() {
		fmt.Fprintf(w, "\nThe same binary is the engine, `%[1]s daemon`, and an OCI runtime with runc's\ncommand line, `%[1]s runtime`.\n", cmd.Name())
	}
}

// visibleFlags is fs without --help, which docker's help lists but says
// nothing: every command has it.
func visibleFlags(fs *pflag.FlagSet) *pflag.FlagSet {
	out := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			out.AddFlag(f)
		}
	})
	return out
}

// commandAliases lists the full names a command goes by, docker's
// "docker container ls, docker container ps, docker ps": its own path
// with each alias, and the top-level command doing the same thing.
func commandAliases(cmd *cobra.Command) []string {
	if !cmd.HasParent() {
		return nil
	}
	parent := cmd.Parent().CommandPath()
	var out []string
	for _, n := range append([]string{cmd.Name()}, cmd.Aliases...) {
		out = append(out, parent+" "+n)
	}
	if short := cmd.Annotations[annotationTopLevel]; short != "" {
		out = append(out, cmd.Root().Name()+" "+short)
	}
	sort.Strings(out)
	return out
}

// annotationTopLevel names the top-level twin of a management
// subcommand: `container ls` is also `ps`.
const annotationTopLevel = "minidock.top-level"

// twin marks cmd, a subcommand of container or image, as the same as the
// top-level command name.
func twin(cmd *cobra.Command, name string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotationTopLevel] = name
	return cmd
}

// statusError ends the command with an exit code: a container's own, or
// docker's 125 for a container that could not be made. A message, if any,
// has already been printed.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// flagError is a command line that does not parse.
type flagError struct {
	cmd *cobra.Command
	err error
}

func (e *flagError) Error() string { return e.err.Error() }

// argsError is a command given the wrong number of arguments.
type argsError struct {
	cmd *cobra.Command
	msg string
}

func (e *argsError) Error() string { return e.msg }

func unknownCommand(cmd *cobra.Command, name string) error {
	return &argsError{cmd: cmd, msg: fmt.Sprintf("unknown command: %s %s", cmd.CommandPath(), name)}
}

// exactArgs, minArgs and rangeArgs check a command's arguments with
// docker's wording.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires %d %s", cmd.CommandPath(), n, plural(n, "argument"))}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires at least %d %s", cmd.CommandPath(), n, plural(n, "argument"))}
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires at most %d %s", cmd.CommandPath(), n, plural(n, "argument"))}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires at least %d and at most %d arguments", cmd.CommandPath(), lo, hi)}
		}
		return nil
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// exitCode prints err as docker does and returns the exit code: 125 for
// a command line that does not parse, 1 for the wrong arguments or a
// failure, the carried code of a statusError.
func exitCode(stderr io.Writer, root *cobra.Command, err error) int {
	var (
		st   statusError
		fe   *flagError
		ae   *argsError
		name = root.Name()
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "%s\n\nUsage:  %s\n\nRun '%s --help' for more information\n", fe.err, fe.cmd.UseLine(), fe.cmd.CommandPath())
		return 125
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "%s: %s\n\nUsage:  %s\n\nRun '%s --help' for more information\n", name, ae.msg, ae.cmd.UseLine(), ae.cmd.CommandPath())
		return 1
	case errors.Is(err, context.Canceled):
		return 1
	}
	fmt.Fprintln(stderr, err)
	return 1
}

// each runs f for every name, printing the name when it succeeds and the
// error when it fails, as docker's stop, rm, kill ... do; it fails if any
// failed.
func (cli *CLI) each(names []string, f func(string) error) error {
	failed := false
	for _, n := range names {
		if err := f(n); err != nil {
			fmt.Fprintln(cli.Err, err)
			failed = true
			continue
		}
		fmt.Fprintln(cli.Out, n)
	}
	if failed {
		return statusError(1)
	}
	return nil
}
