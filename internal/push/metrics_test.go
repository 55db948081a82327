package push

import "testing"

func TestStatusClassLabels(t *testing.T) {
	cases := map[int]string{
		0:   "error",
		101: "1xx",
		200: "2xx",
		204: "2xx",
		301: "3xx",
		410: "4xx",
		429: "4xx",
		500: "5xx",
		599: "5xx",
		600: "other",
		-1:  "other",
	}
	for status, want := range cases {
		if got := statusClass(status); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", status, got, want)
		}
	}
}
