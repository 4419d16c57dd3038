package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"minidock/client"
)

// Shell completion (`minidock completion bash|zsh|fish|powershell` is
// cobra's): besides commands and flags, the names the daemon knows, as
// docker's completion offers them. A daemon that does not answer gives no
// names, never an error in the middle of a command line.

// completeContainers offers container names: running ones, or all with all.
func completeContainers(cli *CLI, all bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		c, err := cli.API()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.ContainerList(cmd.Context(), client.ContainerListOptions{All: all, Limit: -1})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, s := range list {
			for _, n := range s.Names {
				names = append(names, strings.TrimPrefix(n, "/"))
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeImages offers image names (REPOSITORY:TAG).
func completeImages(cli *CLI) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		c, err := cli.API()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.ImageList(cmd.Context(), false)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, im := range list {
			names = append(names, im.RepoTags...)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeNetworks offers network names.
func completeNetworks(cli *CLI) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		c, err := cli.API()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.NetworkList(cmd.Context(), nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, n := range list {
			names = append(names, n.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeVolumes offers volume names.
func completeVolumes(cli *CLI) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var names []string
		if c, err := cli.API(); err == nil {
			if resp, err := c.VolumeList(cmd.Context(), nil); err == nil {
				for _, v := range resp.Volumes {
					names = append(names, v.Name)
				}
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// firstArg completes the first argument with f, and nothing after it
// (run IMAGE COMMAND...: the command is the container's).
func firstArg(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return f(cmd, args, prefix)
	}
}
