package main

import "testing"

func TestParseMemTotal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:       24683916 kB\nMemFree:        16309064 kB\n", 24683916 << 10},
		{"MemFree: 5 kB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"MemTotal: 12 MB\n", 0},
		{"", 0},
	} {
		if got := parseMemTotal(c.in); got != c.want {
			t.Errorf("parseMemTotal(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
