package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"minidock/check"
)

// newCheckCommand is `minidock check`: the preflight of package check,
// run on this machine (not through a daemon). It exits 1 when a check
// fails, 0 when there are only warnings.
func newCheckCommand(cli *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Check what this machine offers containers, and how to fix what it lacks",
		Long: "Check what this machine offers containers, and how to fix what it lacks.\n\n" +
			"Root, the kernel, overlayfs, cgroups, user namespaces, ip_forward, nftables,\n" +
			"seccomp, and the learner's tools: busybox-static and Delve. It looks at this\n" +
			"machine, not at a daemon, and needs no root. Exits 1 if a check fails.",
		Args: exactArgs(0),
		// no daemon: not even its client
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			results := check.Run(check.System())
			if format != "" {
				items := make([]any, len(results))
				for i, r := range results {
					items[i] = r
				}
				if err := printFormatted(cli.Out, format, checkTable, items, checkHeaders); err != nil {
					return err
				}
			} else {
				printChecks(cli.Out, results)
			}
			if check.Failed(results) {
				return statusError(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "Format the output: json (one object per check), table, or a Go template (fields Name, Status, Found, Fix, Tool)")
	return cmd
}

var checkHeaders = map[string]string{"Name": "CHECK", "Status": "STATUS", "Found": "FOUND", "Fix": "FIX", "Tool": "TOOL"}

const checkTable = "{{.Status}}\t{{.Name}}\t{{.Found}}"

// printChecks writes one block per check, wrapped to 80 columns: status,
// name, what was found, and the fix under it; then a count.
func printChecks(w io.Writer, results []check.Result) {
	const indent = "                  " // "warn  ip_forward  " is 18 wide
	warns, fails := 0, 0
	for _, r := range results {
		head := fmt.Sprintf("%-5s %-11s ", r.Status, r.Name)
		fmt.Fprintln(w, wrap(head, indent, r.Found, 80))
		if r.Fix != "" {
			fmt.Fprintln(w, wrap(indent+"fix: ", indent+"     ", r.Fix, 80))
		}
		switch r.Status {
		case check.Warn:
			warns++
		case check.Fail:
			fails++
		}
	}
	switch {
	case fails > 0:
		fmt.Fprintf(w, "\n%d %s, %d %s: containers cannot run here until the failures are fixed.\n",
			fails, plural(fails, "failure"), warns, plural(warns, "warning"))
	case warns > 0:
		fmt.Fprintf(w, "\n%d %s; nothing fails.\n", warns, plural(warns, "warning"))
	default:
		fmt.Fprintln(w, "\nEverything minidock uses is here.")
	}
}

// wrap puts text after first and breaks it into lines of at most width
// columns, each further line starting with next.
func wrap(first, next, text string, width int) string {
	var b strings.Builder
	line := first
	empty := true
	for _, word := range strings.Fields(text) {
		if !empty && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line, empty = next, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	b.WriteString(strings.TrimRight(line, " "))
	return b.String()
}
