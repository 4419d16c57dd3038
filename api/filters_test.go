package api

import "testing"

func TestFilters(t *testing.T) {
	f, err := ParseFilters(`{"label":["a=b","c"],"status":["running"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if !f.MatchLabels(map[string]string{"a": "b", "c": "x"}) || f.MatchLabels(map[string]string{"a": "z", "c": ""}) || f.MatchLabels(map[string]string{"a": "b"}) {
		t.Error("labels")
	}
	if !f.Match("status", func(v string) bool { return v == "running" }) || f.Match("status", func(string) bool { return false }) {
		t.Error("status")
	}
	if !f.Match("id", func(string) bool { return false }) {
		t.Error("a key without values matches")
	}
	if err := f.Only("label", "status"); err != nil {
		t.Error(err)
	}
	if err := f.Only("label"); err == nil || err.Error() != "invalid filter 'status'" {
		t.Errorf("Only: %v", err)
	}
	old, err := ParseFilters(`{"label":{"a=b":true}}`)
	if err != nil || len(old["label"]) != 1 || old["label"][0] != "a=b" {
		t.Errorf("the older form: %v %v", old, err)
	}
	if _, err := ParseFilters(`{"label":`); err == nil {
		t.Error("bad JSON accepted")
	}
}
