package cli

import (
	"github.com/spf13/cobra"

	"minidock/api"
)

func newExecCommand(cli *CLI) *cobra.Command {
	var (
		detach, interactive, tty bool
		privileged               bool
		workdir, user            string
		env                      listValue
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := cli.client
			cfg := api.ExecConfig{Cmd: args[1:], Env: env, WorkingDir: workdir, User: user, Tty: tty, Detach: detach, Privileged: privileged,
				AttachStdin: interactive && !detach, AttachStdout: !detach, AttachStderr: !detach}
			created, err := c.ExecCreate(ctx, args[0], cfg)
			if err != nil {
				return err
			}
			id := created.ID
			if detach {
				return c.ExecStartDetached(ctx, id)
			}
			conn, err := c.ExecAttach(ctx, id, tty)
			if err != nil {
				return err
			}
			defer conn.Close()
			done, restore := cli.stream(conn, interactive, tty, func(h, w int) error { return c.ExecResize(ctx, id, h, w) })
			<-done
			restore()
			ins, err := c.ExecInspect(ctx, id)
			if err != nil {
				return err
			}
			if ins.ExitCode != nil && *ins.ExitCode != 0 {
				return statusError(*ins.ExitCode)
			}
			return nil
		},
		ValidArgsFunction: firstArg(completeContainers(cli, false)),
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fs.VarP(&env, "env", "e", "Set environment variables")
	fs.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	return cmd
}
