package bridge

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// A bridge a daemon made carries its owner's name in the link's alias
// (IFLA_IFALIAS, `ip link show` prints it), so that a daemon deletes only
// the bridges it made: not one an administrator prepared, nor another
// daemon's that happens to have the name its records say.

// LinkOwner reports whether a link called name exists and, if so, its
// alias: the owner a daemon wrote with SetOwner, or "".
func LinkOwner(name string) (owner string, exists bool, err error) {
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return link.Attrs().Alias, true, nil
}

// SetOwner writes owner into the alias of link name (RTM_SETLINK
// IFLA_IFALIAS).
func SetOwner(name, owner string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := netlink.LinkSetAlias(link, owner); err != nil {
		return fmt.Errorf("set the alias of %s: %w", name, err)
	}
	return nil
}

// DeleteOwnBridge deletes bridge name only when owner made it (its alias
// says so); it reports whether it did. A missing bridge is not an error.
func DeleteOwnBridge(name, owner string) (bool, error) {
	alias, exists, err := LinkOwner(name)
	if err != nil || !exists || alias != owner {
		return false, err
	}
	return true, DeleteBridge(name)
}
