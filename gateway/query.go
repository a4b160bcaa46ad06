// Query parameters of the lists: cursors, limits and filters, read strictly.

package gateway

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
)

// listQuery is what a list's query string may say. A parameter given empty is
// not given.
type listQuery struct {
	after      int64    // the cursor: the next of the previous page
	limit      int      // 0: the list's default
	statuses   []string // status=a,b
	state      string
	activityID int64
	itemID     int64
	oldest     bool   // order=oldest
	format     string // json or csv
}

// parseList reads the query string of a list that knows the parameters named;
// any other, a repeated one or a malformed value is bad_request, and the
// handler stops when ok is false.
func parseList(c *app.RequestContext, known ...string) (q listQuery, ok bool) {
	var err error
	seen := map[string]bool{}
	c.QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		key, val := string(k), strings.TrimSpace(string(v))
		switch {
		case !slices.Contains(known, key):
			err = fmt.Errorf("unknown query parameter %q; this list takes %s", key, strings.Join(known, ", "))
			return
		case seen[key]:
			err = fmt.Errorf("query parameter %q is given twice", key)
			return
		}
		seen[key] = true
		if val == "" {
			return
		}
		switch key {
		case "after":
			q.after, err = positive(key, val)
		case "limit":
			var n int64
			if n, err = positive(key, val); err == nil {
				q.limit = int(min(n, 1<<30))
			}
		case "activity_id":
			q.activityID, err = positive(key, val)
		case "item_id":
			q.itemID, err = positive(key, val)
		case "status":
			for _, s := range strings.Split(val, ",") {
				if s = strings.TrimSpace(s); s != "" && !slices.Contains(q.statuses, s) {
					q.statuses = append(q.statuses, s)
				}
			}
		case "state":
			q.state = val
		case "order":
			switch val {
			case "newest":
			case "oldest":
				q.oldest = true
			default:
				err = fmt.Errorf("order must be newest or oldest, not %q", val)
			}
		case "format":
			if val != "json" && val != "csv" {
				err = fmt.Errorf("format must be json or csv, not %q", val)
			}
			q.format = val
		}
	})
	if err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return q, false
	}
	return q, true
}

// positive reads a parameter that is a positive integer, like an id or a limit.
func positive(key, val string) (int64, error) {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer, not %q", key, val)
	}
	return n, nil
}

// cursor is a page's next as the API shows it: "" when there is none.
func cursor(next int64) string {
	if next <= 0 {
		return ""
	}
	return strconv.FormatInt(next, 10)
}
