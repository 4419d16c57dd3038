package image

import "testing"

// FuzzParseReference: a reference that parses is normalised for good
// (its String parses to the same Reference) and its familiar form parses
// to it too.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:1.36", "localhost:5000/team/app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"docker.io/library/busybox:latest", "index.docker.io/x", "[::1]:5000/a/b:c", "a__b/c--d", "UPPER", "x:y:z", "@sha256:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		for _, form := range []string{r.String(), r.FamiliarString()} {
			again, err := ParseReference(form)
			if err != nil || again != r {
				t.Fatalf("%q parsed as %+v; %q parses as %+v (%v)", s, r, form, again, err)
			}
		}
	})
}
