package client

import (
	"fmt"
	"strconv"
	"strings"

	"minidock/api"
)

// parseRestartPolicy reads --restart: no, always, unless-stopped,
// on-failure or on-failure:MAX-RETRIES.
func parseRestartPolicy(s string) (api.RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := api.RestartPolicy{Name: name}
	if hasMax {
		n, err := strconv.Atoi(max)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy %q: the maximum retry count must be a number", s)
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}
