package realtime

import (
	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// coreNamespaces are the namespaces the gateway serves itself: only the
// server publishes on them.
var coreNamespaces = []string{wire.NSUser, wire.NSStatus, wire.NSBroadcast}

// namespace is one entry of the Node's namespace table: a core namespace
// (owner nil) or one an extension registered.
type namespace struct {
	owner Extension
	decl  Namespace
}

// channel parses ch and finds its namespace in the table. A channel of a
// namespace nobody serves is invalid, as a malformed name is.
func (n *Node) channel(ch string) (ns, name string, entry namespace, err error) {
	ns, name, err = wire.ParseChannel(ch)
	if err != nil {
		return "", "", namespace{}, err
	}
	entry, ok := n.ns[ns]
	if !ok {
		return "", "", namespace{}, partyline.Errorf(partyline.ErrInvalid, "unknown channel namespace %q", ns)
	}
	return ns, name, entry, nil
}
