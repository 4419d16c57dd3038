package client

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"minidock/api"
)

// longNames gives flags docker's long names too: --detach for -d, ...
// Both names share one value.
func longNames(fs *flag.FlagSet, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if f := fs.Lookup(pairs[i+1]); f != nil && fs.Lookup(pairs[i]) == nil {
			fs.Var(f.Value, pairs[i], f.Usage)
		}
	}
}

// readEnvFile reads an --env-file: KEY=VALUE lines; a line with a name
// alone takes its value from our environment (and is dropped when unset);
// blank lines and # comments are skipped.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimLeft(s.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env-file %s line %d: %q is not NAME=VALUE", path, n, line)
		}
		if !hasValue {
			v, ok := os.LookupEnv(k)
			if !ok {
				continue
			}
			line = k + "=" + v
		}
		out = append(out, line)
	}
	return out, s.Err()
}

// cmdTag is `minidock tag SOURCE TARGET`.
func cmdTag(c *Client, args []string) error {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: minidock tag SOURCE_IMAGE TARGET_IMAGE[:TAG]")
		return exitError(2)
	}
	q := url.Values{}
	setRepoTag(q, args[1])
	if q.Get("tag") == "" {
		q.Set("tag", "latest")
	}
	return c.JSON(context.Background(), "POST", "/images/"+url.PathEscape(args[0])+"/tag", q, nil, nil)
}

// cmdSave is `minidock save [-o FILE] IMAGE...`: a docker-save archive.
func cmdSave(c *Client, args []string) error {
	fs := newFlags("save")
	output := fs.String("o", "", "write to FILE instead of stdout")
	longNames(fs, "output", "o")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError(2)
	}
	w := io.Writer(os.Stdout)
	if *output == "" {
		if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return fmt.Errorf("refusing to write a tar archive to a terminal: use -o FILE or redirect")
		}
	} else {
		f, err := os.Create(*output)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	resp, err := c.Do(context.Background(), "GET", "/images/get", url.Values{"names": fs.Args()}, nil, "")
	if err != nil {
		if *output != "" {
			os.Remove(*output)
		}
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// cmdInfo is `minidock info`: what the daemon says of itself.
func cmdInfo(c *Client, args []string) error {
	var info map[string]any
	if err := c.JSON(context.Background(), "GET", "/info", nil, nil, &info); err != nil {
		return err
	}
	fmt.Println("Server:")
	for _, k := range []string{"Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images",
		"ServerVersion", "Driver", "CgroupDriver", "CgroupVersion", "KernelVersion", "OperatingSystem", "OSType",
		"Architecture", "NCPU", "MemTotal", "DockerRootDir", "Name"} {
		if v, ok := info[k]; ok {
			fmt.Printf(" %s: %v\n", k, v)
		}
	}
	var nets []api.Network
	if err := c.JSON(context.Background(), "GET", "/networks", nil, nil, &nets); err == nil {
		names := make([]string, 0, len(nets))
		for _, n := range nets {
			names = append(names, n.Name)
		}
		fmt.Printf(" Networks: %s\n", strings.Join(names, " "))
	}
	return nil
}
