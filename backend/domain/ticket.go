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
// anything that is not a ticket.
func ParseTicket(ticket string) (activityID, itemID int64, err error) {
	parts := strings.SplitN(ticket, "-", 3)
	if len(parts) != 3 || parts[2] == "" || len(ticket) > 80 {
		return 0, 0, Errorf(ENotFound, "unknown ticket")
	}
	a, err1 := strconv.ParseInt(parts[0], 10, 64)
	i, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || a <= 0 || i <= 0 {
		return 0, 0, Errorf(ENotFound, "unknown ticket")
	}
	return a, i, nil
}
