package daemon

import (
	"sort"
	"strings"

	"minidock/api"
	"minidock/internal/errdefs"
)

// checkOutputFields refuses the fields of a create request that the API
// types declare because inspect shows them, but that nothing applies
// when they come in a request: an endpoint's MacAddress (docker run
// --mac-address; minidock's bridge gives each endpoint an address
// derived from its IP), and the endpoint fields that are results
// (NetworkID, EndpointID, Gateway, IPAddress, IPPrefixLen, DNSNames).
// The server refuses the fields no type declares (api.UnsupportedFields);
// these it cannot tell from the fields that are applied.
func checkOutputFields(nc *api.NetworkingConfig) error {
	if nc == nil {
		return nil
	}
	var set []string
	for name, es := range nc.EndpointsConfig {
		if es == nil {
			continue
		}
		for field, isSet := range map[string]bool{
			"MacAddress": es.MacAddress != "", "NetworkID": es.NetworkID != "", "EndpointID": es.EndpointID != "",
			"Gateway": es.Gateway != "", "IPAddress": es.IPAddress != "", "IPPrefixLen": es.IPPrefixLen != 0,
			"DNSNames": len(es.DNSNames) > 0,
		} {
			if isSet {
				set = append(set, "NetworkingConfig.EndpointsConfig."+name+"."+field)
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	sort.Strings(set)
	return errdefs.Invalidf("%s: not supported in a create request by this daemon (refused rather than ignored)", strings.Join(set, ", "))
}
