package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// NewTicket returns a ticket id that names its activity and item, so a ticket's state
// can be found from the ticket alone: "<activity>-<item>-<random>".
func NewTicket(activityID, itemID int64, random string) string {
	return fmt.Sprintf("%d-%d-%s", activityID, itemID, random)
}

// ParseTicket returns the activity and item a ticket belongs to; not_found for
// anything that is not a ticket. A ticket is canonical: its ids are decimal digits
// without a sign or a leading zero, and the rest is lower-case letters, digits and
// dots, so a ticket has one spelling (before migration 0010 MySQL's collation folded
// case and padded spaces, and took other spellings for the ticket; the check stays as
// a guard).
func ParseTicket(ticket string) (activityID, itemID int64, err error) {
	parts := strings.SplitN(ticket, "-", 3)
	if len(parts) != 3 || parts[2] == "" || len(ticket) > 80 || !canonical(parts[0], false) || !canonical(parts[1], false) || !canonical(parts[2], true) {
		return 0, 0, Errorf(ENotFound, "unknown ticket")
	}
	a, err1 := strconv.ParseInt(parts[0], 10, 64)
	i, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || a <= 0 || i <= 0 {
		return 0, 0, Errorf(ENotFound, "unknown ticket")
	}
	return a, i, nil
}

// canonical reports whether s is a canonical id (digits, no leading zero) or, with
// rest, a ticket's last part (lower-case letters, digits, dots).
func canonical(s string, rest bool) bool {
	if s == "" || !rest && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || rest && ('a' <= c && c <= 'z' || c == '.')) {
			return false
		}
	}
	return true
}
