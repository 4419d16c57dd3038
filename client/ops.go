package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"minidock/api"
)

func cmdPause(c *Client, args []string) error {
	return each(args, func(n string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(n)+"/pause", nil, nil, nil)
	})
}

func cmdUnpause(c *Client, args []string) error {
	return each(args, func(n string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(n)+"/unpause", nil, nil, nil)
	})
}

func cmdRename(c *Client, args []string) error {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: minidock %s\n", commands["rename"].usage)
		return exitError(2)
	}
	return c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(args[0])+"/rename", url.Values{"name": {args[1]}}, nil, nil)
}

func cmdTop(c *Client, args []string) error {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: minidock %s\n", commands["top"].usage)
		return exitError(2)
	}
	var top api.ContainerTopResponse
	if err := c.JSON(context.Background(), "GET", "/containers/"+url.PathEscape(args[0])+"/top", nil, nil, &top); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
	for _, p := range top.Processes {
		fmt.Fprintln(tw, strings.Join(p, "\t"))
	}
	return tw.Flush()
}

// statsLine is one row of docker stats.
func statsLine(s api.StatsJSON) string {
	cpu := 0.0
	dc := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	ds := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if s.PreCPUStats.SystemUsage != 0 && dc > 0 && ds > 0 {
		cpu = dc / ds * float64(s.CPUStats.OnlineCPUs) * 100
	}
	mem := 0.0
	if s.MemoryStats.Limit > 0 {
		mem = float64(s.MemoryStats.Usage) / float64(s.MemoryStats.Limit) * 100
	}
	return fmt.Sprintf("%.12s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%d", s.ID, strings.TrimPrefix(s.Name, "/"), cpu,
		humanSize(int64(s.MemoryStats.Usage)), humanSize(int64(s.MemoryStats.Limit)), mem, s.PidsStats.Current)
}

const statsHeader = "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tPIDS"

func cmdStats(c *Client, args []string) error {
	fs := newFlags("stats")
	noStream := fs.Bool("no-stream", false, "print one sample and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(os.Stderr, "usage: minidock %s\n", commands["stats"].usage)
		return exitError(2)
	}
	if *noStream || fs.NArg() > 1 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, statsHeader)
		failed := false
		for _, n := range fs.Args() {
			var s api.StatsJSON
			if err := c.JSON(context.Background(), "GET", "/containers/"+url.PathEscape(n)+"/stats", url.Values{"stream": {"0"}}, nil, &s); err != nil {
				fmt.Fprintln(os.Stderr, err)
				failed = true
				continue
			}
			fmt.Fprintln(tw, statsLine(s))
		}
		tw.Flush()
		if failed {
			return exitError(1)
		}
		return nil
	}
	resp, err := c.Do(context.Background(), "GET", "/containers/"+url.PathEscape(fs.Arg(0))+"/stats", url.Values{"stream": {"1"}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var s api.StatsJSON
		if err := dec.Decode(&s); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		fmt.Print("\033[2J\033[H")
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, statsHeader)
		fmt.Fprintln(tw, statsLine(s))
		tw.Flush()
	}
}

func cmdEvents(c *Client, args []string) error {
	fs := newFlags("events")
	since := fs.String("since", "", "show events since this time (unix seconds or RFC 3339)")
	until := fs.String("until", "", "stop at this time")
	var filters listFlag
	fs.Var(&filters, "f", "filter key=value (type, event, container, image, label)")
	fs.Var(&filters, "filter", "same as -f")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *since != "" {
		q.Set("since", *since)
	}
	if *until != "" {
		q.Set("until", *until)
	}
	if len(filters) > 0 {
		q.Set("filters", encodeFilters(filters))
	}
	resp, err := c.Do(context.Background(), "GET", "/events", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m api.EventMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		var attrs []string
		for k, v := range m.Actor.Attributes {
			attrs = append(attrs, k+"="+v)
		}
		sort.Strings(attrs)
		fmt.Printf("%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00"),
			m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
	}
}

// encodeFilters turns -f KEY=VALUE flags into the API's filters
// parameter, {"KEY":["VALUE",...]}.
func encodeFilters(filters []string) string {
	m := map[string][]string{}
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		m[k] = append(m[k], v)
	}
	data, _ := json.Marshal(m)
	return string(data)
}
