package server

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// LoadHtpasswd reads an htpasswd file of "user:bcrypt-hash" lines (as
// `htpasswd -B` writes them); blank lines and '#' comments are skipped.
// Other hash schemes are refused, naming the line.
func LoadHtpasswd(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd %s:%d: want user:hash", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd %s:%d: user %q: only bcrypt hashes ($2y$, htpasswd -B) are supported: %v", path, n, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("htpasswd %s: no users", path)
	}
	return users, nil
}

// authorized checks HTTP basic credentials when the server has users,
// answering 401 with a Basic challenge otherwise. Passwords are compared
// by bcrypt; the user name in constant time.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if len(s.opts.Users) == 0 {
		return true
	}
	user, pass, ok := r.BasicAuth()
	if ok {
		for u, hash := range s.opts.Users {
			if subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 &&
				bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil {
				return true
			}
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="minidock-registry"`)
	msg := "authentication required"
	if ok {
		msg = "invalid username or password"
	}
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
	return false
}
