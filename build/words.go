package build

import (
	"errors"
	"fmt"
	"strings"
)

// rawWords splits s into words at blanks that are outside quotes and not
// escaped, keeping the quotes and escapes in the words: ENV's pairs and
// COPY's paths are split first, each word substituted after (word).
func rawWords(s string, escape rune) []string {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			if c == escape && quote == '"' && i+1 < len(rs) {
				cur.WriteRune(c)
				i++
				c = rs[i]
			} else if c == quote {
				quote = 0
			}
		case c == escape && i+1 < len(rs):
			cur.WriteRune(c)
			i++
			c = rs[i]
		case c == '\'' || c == '"':
			quote = c
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
			continue
		}
		cur.WriteRune(c)
		in = true
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// expander substitutes variables in Dockerfile words as the builder does
// (not the shell: RUN's command line is left to the shell): $NAME,
// ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:+alt}, ${NAME+alt},
// ${NAME:?message}, ${NAME?message}; it removes quotes ('...' is taken
// as it is, "..." still substitutes) and escapes.
type expander struct {
	escape rune
	// lookup gives a variable's value and whether it is set.
	lookup func(name string) (string, bool)
	// seen, when set, is told every name looked up.
	seen func(name string)
}

// word substitutes and unquotes one word.
func (e *expander) word(s string) (string, error) {
	sc := &scanner{e: e, src: []rune(s)}
	out, err := sc.until(0)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return out, nil
}

// text substitutes variables in a here-document's content: quotes are
// plain characters there, and the escape character quotes only '$'.
func (e *expander) text(s string) (string, error) {
	sc := &scanner{e: e, src: []rune(s), raw: true}
	return sc.until(0)
}

// words substitutes each of ws.
func (e *expander) words(ws []string) ([]string, error) {
	out := make([]string, len(ws))
	for i, w := range ws {
		var err error
		if out[i], err = e.word(w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type scanner struct {
	e   *expander
	src []rune
	pos int
	raw bool // here-document text: no quotes
}

func (s *scanner) peek() rune {
	if s.pos < len(s.src) {
		return s.src[s.pos]
	}
	return 0
}

// until reads up to the rune stop (0: to the end), which it consumes.
func (s *scanner) until(stop rune) (string, error) {
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case stop != 0 && c == stop:
			s.pos++
			return b.String(), nil
		case c == s.e.escape && s.raw:
			s.pos++
			if s.peek() == '$' {
				s.pos++
				b.WriteRune('$')
			} else {
				b.WriteRune(c)
			}
		case c == s.e.escape:
			s.pos++
			if s.pos < len(s.src) { // an escape at the very end is dropped
				b.WriteRune(s.src[s.pos])
				s.pos++
			}
		case s.raw:
			if c == '$' {
				v, err := s.dollar()
				if err != nil {
					return "", err
				}
				b.WriteString(v)
				continue
			}
			b.WriteRune(c)
			s.pos++
		case c == '\'':
			s.pos++
			end := -1
			for i := s.pos; i < len(s.src); i++ {
				if s.src[i] == '\'' {
					end = i
					break
				}
			}
			if end < 0 {
				return "", errors.New("unmatched single quote")
			}
			b.WriteString(string(s.src[s.pos:end]))
			s.pos = end + 1
		case c == '"':
			s.pos++
			v, err := s.doubleQuoted()
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		case c == '$':
			v, err := s.dollar()
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		default:
			b.WriteRune(c)
			s.pos++
		}
	}
	if stop != 0 {
		return "", fmt.Errorf("missing %q", stop)
	}
	return b.String(), nil
}

// doubleQuoted reads up to the closing quote: $ substitutes, and the
// escape character quotes only ", $ and itself (else it stays).
func (s *scanner) doubleQuoted() (string, error) {
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '"':
			s.pos++
			return b.String(), nil
		case c == '$':
			v, err := s.dollar()
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		case c == s.e.escape:
			s.pos++
			switch n := s.peek(); n {
			case 0:
			case '"', '$', s.e.escape:
				b.WriteRune(n)
				s.pos++
			default:
				b.WriteRune(c)
			}
		default:
			b.WriteRune(c)
			s.pos++
		}
	}
	return "", errors.New("unmatched double quote")
}

func isNameRune(c rune) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// dollar reads a substitution at '$'. A '$' that starts none stays.
func (s *scanner) dollar() (string, error) {
	s.pos++ // '$'
	c := s.peek()
	switch {
	case c == '{':
		s.pos++
		return s.braced()
	case c >= '0' && c <= '9': // $1: one digit, as sh reads it
		s.pos++
		v, _ := s.get(string(c))
		return v, nil
	case isNameRune(c):
		start := s.pos
		for s.pos < len(s.src) && isNameRune(s.src[s.pos]) {
			s.pos++
		}
		v, _ := s.get(string(s.src[start:s.pos]))
		return v, nil
	}
	return "$", nil
}

func (s *scanner) get(name string) (string, bool) {
	if s.e.seen != nil {
		s.e.seen(name)
	}
	if s.e.lookup == nil {
		return "", false
	}
	return s.e.lookup(name)
}

// braced reads ${NAME} and its forms with an operator, after the '{'.
func (s *scanner) braced() (string, error) {
	start := s.pos
	for s.pos < len(s.src) && isNameRune(s.src[s.pos]) {
		s.pos++
	}
	name := string(s.src[start:s.pos])
	if name == "" {
		return "", errors.New("bad substitution: ${} needs a variable name")
	}
	value, set := s.get(name)
	op := s.peek()
	switch op {
	case '}':
		s.pos++
		return value, nil
	case 0:
		return "", fmt.Errorf("bad substitution: ${%s is missing its }", name)
	}
	colon := op == ':'
	if colon {
		s.pos++
		op = s.peek()
	}
	if op != '-' && op != '+' && op != '?' {
		return "", fmt.Errorf("bad substitution in ${%s...}: unsupported operator", name)
	}
	s.pos++
	word, err := s.until('}')
	if err != nil {
		return "", err
	}
	present := set && (!colon || value != "") // ':' also counts empty as unset
	switch op {
	case '-':
		if present {
			return value, nil
		}
		return word, nil
	case '+':
		if present {
			return word, nil
		}
		return "", nil
	default: // '?'
		if present {
			return value, nil
		}
		if word == "" {
			word = "is not set"
			if colon {
				word = "is not set or is empty"
			}
		}
		return "", fmt.Errorf("%s: %s", name, word)
	}
}

// referencedNames lists the $NAME and ${NAME...} references of a shell
// command line, skipping single-quoted text and escaped dollars: the
// names a RUN would see from its environment.
func referencedNames(s string, escape rune) []string {
	var names []string
	rs := []rune(s)
	quote := false
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '\'':
			quote = !quote
		case quote:
		case c == escape:
			i++
		case c == '$' && i+1 < len(rs):
			j := i + 1
			if rs[j] == '{' {
				j++
			}
			k := j
			for k < len(rs) && isNameRune(rs[k]) {
				k++
			}
			if k > j {
				names = append(names, string(rs[j:k]))
			}
			i = k - 1
		}
	}
	return names
}
