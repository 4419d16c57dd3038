package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"minidock/api"
)

// --format, as docker has it: a Go text/template run on each item, with
// docker's template functions. "table" in front prints a header row and
// aligns the columns; "json" alone prints each item as one line of JSON.

// templateFuncs are docker's (cli/templates): json, split, join, title,
// lower, upper, pad, truncate, println.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"println": func(args ...any) string { return fmt.Sprintln(args...) },
}

// parseFormat reads a --format value: the template, and whether it is a
// table. defaultTable is what a bare "table" means.
func parseFormat(format, defaultTable string) (*template.Template, bool, error) {
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.TrimSpace(format))
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, strings.TrimSpace(rest)
		if format == "" {
			format = defaultTable
		}
	}
	if format == "json" {
		format = "{{json .}}"
	}
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, false, fmt.Errorf("template parsing error: %v", err)
	}
	return tmpl, table, nil
}

// printFormatted runs format on every item; headers titles the columns
// of a table by field name.
func printFormatted(out io.Writer, format, defaultTable string, items []any, headers map[string]string) error {
	tmpl, table, err := parseFormat(format, defaultTable)
	if err != nil {
		return err
	}
	w := out
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		var hdr bytes.Buffer
		// the header row is the template run on the column titles; one
		// that takes arguments ({{.Label "x"}}) has none
		if err := tmpl.Execute(&hdr, headers); err == nil {
			fmt.Fprintln(w, strings.TrimRight(hdr.String(), "\n"))
		}
	}
	for _, it := range items {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, it); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(w, strings.TrimRight(buf.String(), "\n"))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// psItem is a container as docker ps --format sees it.
type psItem struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports     string
	State, Status, Size, Names, Labels, Mounts, Networks string

	labels map[string]string // for Label
}

// Label is the value of one label.
func (p psItem) Label(name string) string { return p.labels[name] }

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS",
	"Mounts": "MOUNTS", "Networks": "NETWORKS",
}

const psTable = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func psItems(list []api.ContainerSummary) []any {
	out := make([]any, 0, len(list))
	for _, s := range list {
		cmd := s.Command
		if r := []rune(cmd); len(r) > 20 {
			cmd = string(r[:19]) + "…"
		}
		var names []string
		for _, n := range s.Names {
			names = append(names, strings.TrimPrefix(n, "/"))
		}
		created := time.Unix(s.Created, 0)
		out = append(out, psItem{
			ID: shortID(s.ID), Image: s.Image, Command: strconv.Quote(cmd), CreatedAt: created.String(),
			RunningFor: ago(created), Ports: formatPorts(s.Ports), State: s.State, Status: s.Status, Size: "0B",
			Names: strings.Join(names, ","), Labels: labelsText(s.Labels), labels: s.Labels,
		})
	}
	return out
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func labelsText(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// imageItem is one line of docker images --format: one per tag.
type imageItem struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size, Containers string
}

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
}

const imagesTable = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

// imagesDigestsTable is images --digests.
const imagesDigestsTable = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

// repoDigest is the digest of repository repo among an image's repo
// digests ("repo@sha256:..."), or <none>.
func repoDigest(digests []string, repo string) string {
	for _, d := range digests {
		if name, dg, ok := strings.Cut(d, "@"); ok && name == repo {
			return dg
		}
	}
	return "<none>"
}

func imageItems(list []api.ImageSummary) []any {
	var out []any
	for _, im := range list {
		tags := im.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		created := time.Unix(im.Created, 0)
		for _, t := range tags {
			i := strings.LastIndex(t, ":")
			out = append(out, imageItem{
				ID: shortID(im.ID), Repository: t[:i], Tag: t[i+1:], Digest: repoDigest(im.RepoDigests, t[:i]),
				CreatedSince: ago(created), CreatedAt: created.String(), Size: humanSize(im.Size), Containers: "N/A",
			})
		}
	}
	return out
}
