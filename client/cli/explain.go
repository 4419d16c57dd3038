package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"minidock/api"
)

// newExplainCommand is `minidock explain CONTAINER`: what the kernel built
// for a container, as the daemon reads it (GET /containers/{id}/explain),
// in text for an 80-column terminal or as JSON (docs/explain.md).
func newExplainCommand(cli *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "explain [OPTIONS] CONTAINER",
		Short: "Show what the kernel built for a container, beside the host's side",
		Long: "Show what the kernel built for a container, beside the host's side.\n\n" +
			"Its namespaces against the host's, its cgroup with limits and usage, the\n" +
			"overlay root mapped back to the image's layers, the mounts inside, the\n" +
			"capabilities and seccomp mode of its init, the network path from eth0 to\n" +
			"the bridge and the nft rules of its ports, and the process tree from the\n" +
			"shim down. Of a stopped container: what is still there.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" && format != "text" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			ex, err := cli.client.ContainerExplain(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cli.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(ex)
			}
			printExplanation(cli.Out, &ex)
			return nil
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	cmd.Flags().StringVar(&format, "format", "", "Format the output: text (the default) or json")
	return cmd
}

// explainWidth is the terminal the text is laid out for.
const explainWidth = 80

// printExplanation writes the sections of ex in the order the kernel
// builds them: namespaces, cgroup, root filesystem, mounts, privileges,
// network, processes.
func printExplanation(w io.Writer, ex *api.Explanation) {
	name := ex.ID
	if len(name) > 12 {
		name = name[:12]
	}
	fmt.Fprintf(w, "Container %s (%s), image %s\n", name, ex.Name, ex.Image)
	if ex.Running {
		fmt.Fprintf(w, "%s: its init is pid %d on the host\n", ex.Status, ex.Pid)
	} else {
		fmt.Fprintf(w, "%s: not running, so no processes, namespaces, cgroup or network.\n", ex.Status)
		if ex.FinishedAt != "" {
			line := fmt.Sprintf("Last run exited with code %d at %s", ex.ExitCode, ex.FinishedAt)
			if ex.Error != "" {
				line += ": " + ex.Error
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w, "What is still there: the layers and upper dir below, and the log:")
		fmt.Fprintln(w, "  "+ex.LogPath)
	}
	if len(ex.Namespaces) > 0 {
		printNamespaces(w, ex)
	}
	if ex.Cgroup != nil {
		printCgroup(w, ex.Cgroup)
	}
	printRootfs(w, &ex.Rootfs)
	if len(ex.Mounts) > 0 {
		printMounts(w, ex)
	}
	if ex.Security != nil {
		printSecurity(w, ex.Security)
	}
	if ex.Network != nil {
		printNetwork(w, ex.Network)
	}
	if len(ex.Processes) > 0 {
		printProcesses(w, ex.Processes)
	}
	if len(ex.Notes) > 0 {
		fmt.Fprintln(w, "\nNOT READ")
		for _, n := range ex.Notes {
			fmt.Fprintln(w, wrap("  ", "    ", n, explainWidth))
		}
	}
}

func printNamespaces(w io.Writer, ex *api.Explanation) {
	if host := ex.Namespaces[0].HostPid; host == 1 {
		fmt.Fprintf(w, "\nNAMESPACES  /proc/%d/ns/* beside the host's /proc/1/ns/*\n", ex.Pid)
	} else {
		fmt.Fprintf(w, "\nNAMESPACES  /proc/%d/ns/* beside the daemon's /proc/%d/ns/*\n", ex.Pid, host)
		fmt.Fprintln(w, "  (pid 1's cannot be read here: it belongs to another user namespace)")
	}
	for _, ns := range ex.Namespaces {
		verdict := "new"
		if ns.Shared {
			verdict = "shared with the host"
		}
		fmt.Fprintf(w, "  %-7s %-12d host %-12d %s\n", ns.Type, ns.Inode, ns.HostInode, verdict)
	}
}

func printCgroup(w io.Writer, cg *api.ExplainCgroup) {
	version := "v2"
	if cg.Mode != "unified" {
		version = "v1"
	}
	fmt.Fprintf(w, "\nCGROUP  %s (%s), /proc/PID/cgroup\n  %s\n", version, cg.Mode, cg.Path)
	for _, d := range cg.Dirs {
		// the directory is the hierarchy's mount point + the path: show
		// the mount point alone when it is
		dir := d.Dir
		if mp, ok := strings.CutSuffix(d.Dir, cg.Path); ok && cg.Path != "/" {
			dir = mp + " + the path"
		}
		if d.Hierarchy == "" {
			fmt.Fprintf(w, "  %s\n", dir)
		} else {
			fmt.Fprintf(w, "  %-12s %s\n", d.Hierarchy, dir)
		}
	}
	for _, f := range cg.Files {
		fmt.Fprintf(w, "  %-27s %-12s %s\n", f.File, clip(f.Value, 12), f.Meaning)
	}
}

func printRootfs(w io.Writer, r *api.ExplainRootfs) {
	if r.Mounted {
		fmt.Fprintln(w, "\nROOT FILESYSTEM  overlayfs, the root of the container's mount namespace")
	} else {
		fmt.Fprintln(w, "\nROOT FILESYSTEM  overlayfs, not mounted now")
	}
	fmt.Fprintln(w, "  upperdir  "+r.Upper)
	fmt.Fprintln(w, "  workdir   "+r.Work)
	fmt.Fprintln(w, "  merged    "+r.Merged)
	fmt.Fprintln(w, "  lowerdirs, top-most first:")
	for i, l := range r.Lower {
		fmt.Fprintf(w, "  %2d %-5s %s\n", i+1, l.Kind, l.Dir)
		if l.Path != l.Dir {
			fmt.Fprintf(w, "           -> %s\n", l.Path)
		}
		if l.DiffID != "" {
			line := "diff " + shortDigest(l.DiffID)
			if l.Digest != "" {
				line += "  blob " + shortDigest(l.Digest)
			}
			if l.Size > 0 {
				line += fmt.Sprintf("  %d bytes", l.Size)
			}
			fmt.Fprintln(w, "           "+line)
		}
		if l.CreatedBy != "" {
			fmt.Fprintln(w, wrap("           made by: ", "             ", clipWords(l.CreatedBy, explainWidth-13), explainWidth))
		}
	}
}

func printMounts(w io.Writer, ex *api.Explanation) {
	fmt.Fprintf(w, "\nMOUNTS INSIDE  /proc/%d/mountinfo\n", ex.Pid)
	for _, m := range ex.Mounts {
		src := m.Source
		if m.Root != "/" && m.Root != "" {
			src += "[" + m.Root + "]" // findmnt's way: a bind of a directory
		}
		fmt.Fprintf(w, "  %-22s %-8s %s\n", clip(m.Point, 22), clip(m.FSType, 8), clip(src+"  "+m.Options, explainWidth-35))
	}
}

func printSecurity(w io.Writer, s *api.ExplainSecurity) {
	fmt.Fprintln(w, "\nPRIVILEGES  /proc/PID/status of the init")
	caps := func(label string, list []string) {
		text := strings.Join(list, " ")
		if len(list) == 0 {
			text = "(none)"
		}
		fmt.Fprintln(w, wrap(fmt.Sprintf("  %-12s", label), "               ", text, explainWidth))
	}
	caps("effective", s.Effective)
	if strings.Join(s.Bounding, " ") == strings.Join(s.Effective, " ") {
		fmt.Fprintln(w, "  bounding    the same")
	} else {
		caps("bounding", s.Bounding)
	}
	if len(s.Ambient) > 0 {
		caps("ambient", s.Ambient)
	}
	caps("dropped", s.Dropped)
	fmt.Fprintln(w, "               (in the host init's bounding set, not in the container's)")
	fmt.Fprintf(w, "  seccomp     %d (%s), %d filter(s)\n", s.Seccomp, s.SeccompMode, s.SeccompFilters)
	fmt.Fprintf(w, "  no_new_privs %v\n", s.NoNewPrivs)
	userns := "no user namespace of its own: ids are the host's"
	if len(s.UIDMap) != 1 || s.UIDMap[0] != "0 0 4294967295" {
		userns = "mapped to the host's"
	}
	fmt.Fprintf(w, "  uid_map     %s  (%s)\n", strings.Join(s.UIDMap, "; "), userns)
}

func printNetwork(w io.Writer, n *api.ExplainNetwork) {
	fmt.Fprintf(w, "\nNETWORK  %s\n", n.Mode)
	if n.Mode == "host" {
		fmt.Fprintln(w, "  the host's network namespace: no veth, no bridge, no NAT")
	}
	for _, it := range n.Interfaces {
		fmt.Fprintf(w, "  %-6s %s (in the container)\n", it.Name, strings.Join(it.Addresses, " "))
		if it.HostVeth != "" {
			fmt.Fprintf(w, "    <-> veth %s (host, ifindex %d)\n", it.HostVeth, it.HostIndex)
		}
		if it.Bridge != "" {
			fmt.Fprintf(w, "    <-> bridge %s %s\n", it.Bridge, strings.Join(it.BridgeAddresses, " "))
		}
	}
	for _, p := range n.Ports {
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		fmt.Fprintf(w, "  published %s:%d -> %d/%s\n", host, p.HostPort, p.ContainerPort, p.Proto)
	}
	if n.Table != "" {
		fmt.Fprintf(w, "  nft table inet %s, its rules for this container:\n", n.Table)
		for _, r := range n.Rules {
			fmt.Fprintln(w, wrap("    ", "      ", r, explainWidth))
		}
	}
}

func printProcesses(w io.Writer, ps []api.ExplainProcess) {
	fmt.Fprintln(w, "\nPROCESSES  from the shim down (host pid, pid inside)")
	for _, p := range ps {
		inside := "       "
		if p.NSPid != 0 {
			inside = fmt.Sprintf("pid %-3d", p.NSPid)
		}
		head := fmt.Sprintf("  %s%-7d %s %-4s ", strings.Repeat("  ", p.Depth), p.Pid, inside, p.Role)
		fmt.Fprintln(w, head+clip(p.Command, explainWidth-len(head)))
	}
}

// shortDigest is "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

// clipWords clips each word of s to n columns (a digest in a build
// step's created_by would not fit a line).
func clipWords(s string, n int) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = clip(w, n)
	}
	return strings.Join(words, " ")
}

// clip cuts s to n columns, ending it with "…" when cut.
func clip(s string, n int) string {
	if n < 2 || len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
