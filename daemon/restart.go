package daemon

import (
	"time"

	"minidock/api"
	"minidock/internal/errdefs"
)

// Docker's restart backoff: the first restart waits 100 ms, each next one
// twice as long, at most a minute; a run of 10 s or more starts it over.
const (
	restartFirstDelay = 100 * time.Millisecond
	restartMaxDelay   = time.Minute
	restartResetAfter = 10 * time.Second
)

// checkRestartPolicy is create's 400 for a policy Docker would refuse.
func checkRestartPolicy(hc *api.HostConfig) error {
	p := hc.RestartPolicy
	switch p.Name {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return errdefs.Invalidf("invalid restart policy '%s': use no, on-failure[:max-retries], always or unless-stopped", p.Name)
	}
	if p.MaximumRetryCount < 0 {
		return errdefs.Invalidf("invalid restart policy: maximum retry count cannot be negative")
	}
	if p.MaximumRetryCount > 0 && p.Name != "on-failure" {
		return errdefs.Invalidf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
	}
	if hc.AutoRemove && p.Name != "" && p.Name != "no" {
		return errdefs.Invalidf("can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

// wantsRestart applies the policy to a container that has just exited
// (or is found not running when the daemon starts). Callers hold d.mu.
func wantsRestart(c *Container) bool {
	if c.removed || c.ManuallyStopped {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// maybeRestart is the end of exited(): when the policy says so, the
// container is shown restarting and started again after the backoff.
func (d *Daemon) maybeRestart(c *Container) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.State.Status == "running" || !wantsRestart(c) {
		return
	}
	if c.State.FinishedAt.Sub(c.State.StartedAt) >= restartResetAfter {
		c.restartDelay = 0
	}
	if c.restartDelay == 0 {
		c.restartDelay = restartFirstDelay
	} else {
		c.restartDelay = min(2*c.restartDelay, restartMaxDelay)
	}
	d.scheduleRestart(c, c.restartDelay)
}

// scheduleRestart marks c restarting and starts it after delay, unless
// the user stopped, started or removed it meanwhile. Callers hold d.mu.
func (d *Daemon) scheduleRestart(c *Container, delay time.Duration) {
	c.RestartCount++
	c.State.Restarting = true
	c.restartSeq++
	seq := c.restartSeq
	c.save()
	c.notify()
	go func() {
		time.Sleep(delay)
		d.mu.Lock()
		due := c.restartSeq == seq && c.State.Restarting && !c.removed
		d.mu.Unlock()
		if !due {
			return
		}
		// 304: the user started it meanwhile; 404: removed meanwhile
		if err := d.start(c); err != nil && !errdefs.Is(err, errdefs.NotModified) && !errdefs.Is(err, errdefs.NotFound) {
			d.log.Printf("restart container %s: %v", c.ID, err)
		}
	}()
}

// cancelRestart records that the user stopped, killed or removed c: no
// policy restarts it after this exit, and a restart waiting is dropped
// (then it reports true).
func (d *Daemon) cancelRestart(c *Container) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	c.ManuallyStopped = true
	c.restartSeq++
	was := c.State.Restarting
	if was {
		c.State.Restarting = false
		c.notify()
	}
	c.save()
	return was
}

// userStart is a start the user asked for: the restart count and the
// manual-stop mark start over, as in Docker.
func (d *Daemon) userStart(c *Container) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.State.Status == "running" {
		return // a 304: nothing starts over
	}
	c.ManuallyStopped = false
	c.RestartCount = 0
	c.restartDelay = 0
	c.restartSeq++
	c.State.Restarting = false
}

// autoStart runs when the daemon has restored its containers: of those
// found stopped (a restart waiting when the last daemon ended counts as
// stopped), the ones whose policy is always, or whose policy wants a
// restart and that the user did not stop (unless-stopped, on-failure
// after a failure), are started. Containers that were running are not
// its business: when one has exited, exited() applied its policy.
func (d *Daemon) autoStart(stopped []*Container) {
	d.mu.Lock()
	var due []*Container
	for _, c := range stopped {
		// as Docker: never a container that was never started
		if c.State.Status != "exited" {
			continue
		}
		if c.HostConfig.RestartPolicy.Name == "always" || wantsRestart(c) {
			due = append(due, c)
		}
	}
	d.mu.Unlock()
	for _, c := range due {
		d.userStart(c) // Docker starts them afresh: count and mark reset
		if err := d.start(c); err != nil && !errdefs.Is(err, errdefs.NotModified) {
			d.log.Printf("start container %s (restart policy %s): %v", c.ID, c.HostConfig.RestartPolicy.Name, err)
		}
	}
}
