package daemon

import (
	"context"
	"strings"

	"minidock/internal/errdefs"
)

// RenameContainer is POST /containers/{id}/rename?name=.
func (d *Daemon) RenameContainer(ctx context.Context, ref, name string) error {
	c, err := d.lookup(ref)
	if err != nil {
		return err
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || !nameRE().MatchString(name) {
		return errdefs.Invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.removed {
		return errdefs.NotFoundf("No such container: %s", ref)
	}
	if name == c.Name {
		return errdefs.Conflictf("Renaming a container with the same name as its current name")
	}
	if id, used := d.names[name]; used {
		return nameInUse(name, id)
	}
	old := c.Name
	c.Name = name
	if err := c.saveDurably(); err != nil {
		c.Name = old
		return err
	}
	delete(d.names, old)
	d.names[name] = c.ID
	d.network.Rename(c.ID, name)
	c.notify()
	d.emit(c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}
