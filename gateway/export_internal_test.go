package gateway

import "testing"

// TestCell: text an operator wrote (an item's name) never becomes a formula in the
// spreadsheet a CSV export is opened in.
func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"pen": "pen", "": "", "=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "a=b": "a=b",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q): got %q, want %q", in, got, want)
		}
	}
}
