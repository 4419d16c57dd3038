package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"minidock/api"
	"minidock/client"
)

// The registry verbs: pull, push, login, logout, and the pull that run
// and create make of a missing image (--pull). Credentials are kept, as
// docker keeps them, in config.json (config.go) and sent with each pull
// or push as the X-Registry-Auth header; the daemon checks them with the
// registry but never stores them.

func newPullCommand(cli *CLI) *cobra.Command {
	var (
		platform   string
		quiet, all bool
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all {
				return fmt.Errorf("pulling all tags (--all-tags) is not supported: name one tag or digest")
			}
			out := cli.Out
			if quiet {
				out = io.Discard
			}
			if err := cli.pull(cmd.Context(), args[0], platform, out); err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, fullName(args[0]))
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository (not supported)")
	return cmd
}

// pull pulls ref with the stored credentials of its registry, printing
// the progress on out.
func (cli *CLI) pull(ctx context.Context, ref, platform string, out io.Writer) error {
	auth, err := storedAuth(ref)
	if err != nil {
		return err
	}
	msgs, err := cli.client.ImagePull(ctx, ref, client.ImagePullOptions{Platform: platform, Auth: auth})
	if err != nil {
		return err
	}
	return client.EachMessage(msgs, newProgressPrinter(out).print)
}

func newPushCommand(cli *CLI) *cobra.Command {
	var quiet, all bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			_, tag := splitRepoTag(ref[strings.LastIndexByte(ref, '/')+1:])
			switch {
			case all && tag != "":
				return fmt.Errorf("tag can't be used with --all-tags/-a")
			case !all && tag == "" && !strings.Contains(ref, "@"):
				ref += ":latest"
			}
			auth, err := storedAuth(ref)
			if err != nil {
				return err
			}
			msgs, err := cli.client.ImagePush(cmd.Context(), ref, auth)
			if err != nil {
				return err
			}
			out := cli.Out
			if quiet {
				out = io.Discard
			}
			if err := client.EachMessage(msgs, newProgressPrinter(out).print); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(cli.Out, ref)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func newLoginCommand(cli *CLI) *cobra.Command {
	var (
		user, password string
		passwordStdin  bool
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if password != "" {
				fmt.Fprintln(cli.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive")
				}
			}
			if passwordStdin {
				if user == "" {
					return fmt.Errorf("Must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(cli.In)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || password == "" {
				var err error
				if user, password, err = cli.askCredentials(user); err != nil {
					return err
				}
			}
			auth := api.AuthConfig{Username: user, Password: password, ServerAddress: api.ServerKey(server)}
			if auth.ServerAddress != api.IndexServer {
				auth.ServerAddress = server
			}
			resp, err := cli.client.RegistryLogin(cmd.Context(), auth)
			if err != nil {
				return err
			}
			cf, err := loadConfigFile(defaultConfigPath())
			if err != nil {
				return err
			}
			cf.SetAuth(server, api.AuthConfig{Username: user, Password: password, IdentityToken: resp.IdentityToken})
			if err := cf.Save(); err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, resp.Status)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "Password")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "Take the password from stdin")
	return cmd
}

// askCredentials prompts for what the command line did not give; only on
// a terminal, the password without echo.
func (cli *CLI) askCredentials(user string) (string, string, error) {
	in, ok := cli.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", "", fmt.Errorf("Cannot perform an interactive login from a non TTY device")
	}
	r := bufio.NewReader(in)
	if user == "" {
		fmt.Fprint(cli.Out, "Username: ")
		line, err := r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		if user = strings.TrimSpace(line); user == "" {
			return "", "", fmt.Errorf("Error: Non-null Username Required")
		}
	}
	fmt.Fprint(cli.Out, "Password: ")
	pw, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(cli.Out)
	if err != nil {
		return "", "", err
	}
	if len(pw) == 0 {
		return "", "", fmt.Errorf("Error: Password Required")
	}
	return user, string(pw), nil
}

func newLogoutCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			cf, err := loadConfigFile(defaultConfigPath())
			if err != nil {
				return err
			}
			if !cf.RemoveAuth(server) {
				fmt.Fprintf(cli.Out, "Not logged in to %s\n", api.ServerKey(server))
				return nil
			}
			if err := cf.Save(); err != nil {
				return err
			}
			fmt.Fprintf(cli.Out, "Removing login credentials for %s\n", api.ServerKey(server))
			return nil
		},
	}
}

// storedAuth is what config.json holds for ref's registry; nil if nothing.
func storedAuth(ref string) (*api.AuthConfig, error) {
	cf, err := loadConfigFile(defaultConfigPath())
	if err != nil {
		return nil, err
	}
	domain, _ := splitDomain(ref)
	a, ok := cf.AuthFor(domain)
	if !ok {
		return nil, nil
	}
	return &a, nil
}

// splitDomain splits a reference into its registry and the rest, by
// Docker's rule: the first component is a registry when it has a '.' or
// a ':' or is localhost; otherwise the registry is Docker Hub.
func splitDomain(ref string) (domain, rest string) {
	first, after, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, after
	}
	return "docker.io", ref
}

// fullName is the reference as docker prints it after a pull:
// "docker.io/library/busybox:latest".
func fullName(ref string) string {
	domain, rest := splitDomain(ref)
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	if _, tag := splitRepoTag(rest); tag == "" && !strings.Contains(rest, "@") {
		rest += ":latest"
	}
	return domain + "/" + rest
}

// createPulling makes the container, pulling its image first with
// --pull=always, or when the daemon has none of that name with
// --pull=missing (docker's "Unable to find image ... locally"); the
// pull's progress goes to stderr.
func (cli *CLI) createPulling(ctx context.Context, o *containerOptions, req *api.ContainerCreateRequest) (api.CreateResponse, error) {
	pull := func() error {
		return cli.pull(ctx, req.Image, "", cli.Err)
	}
	switch o.pull {
	case "always":
		if err := pull(); err != nil {
			return api.CreateResponse{}, err
		}
	case "missing", "never":
	default:
		return api.CreateResponse{}, fmt.Errorf(`invalid pull option: '%s': must be one of "always", "missing" or "never"`, o.pull)
	}
	created, err := cli.client.ContainerCreate(ctx, o.name, req)
	if err != nil && o.pull == "missing" && client.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		fmt.Fprintf(cli.Err, "Unable to find image '%s' locally\n", withTag(req.Image))
		if err := pull(); err != nil {
			return api.CreateResponse{}, err
		}
		created, err = cli.client.ContainerCreate(ctx, o.name, req)
	}
	return created, err
}

// withTag is ref with ":latest" when it names neither tag nor digest.
func withTag(ref string) string {
	if _, tag := splitRepoTag(ref); tag != "" || strings.Contains(ref, "@") {
		return ref
	}
	return ref + ":latest"
}
