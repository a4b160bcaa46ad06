package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/seckill/flashsale/gateway/api"
)

// The operator CLI's lists (pages, every page, the CSV export) and items.

// listOpts are the flags of the lists.
type listOpts struct {
	state, after, status, out string
	limit                     int
	item                      int64
	all, oldest               bool
}

func listFlags(fs *flag.FlagSet) *listOpts {
	o := &listOpts{}
	fs.StringVar(&o.state, "state", "", "activities list: only this state (draft, published, offline); items add: online or offline")
	fs.StringVar(&o.after, "after", "", "start after this cursor (a previous page's next)")
	fs.IntVar(&o.limit, "limit", 0, "at most this many a page (an export: in all); 0: the list's default")
	fs.BoolVar(&o.all, "all", false, "read every page from the cursor on and print them as one list")
	fs.StringVar(&o.status, "status", "", "only orders in these states, comma-separated (created, paid, cancelled, expired, deleted)")
	fs.Int64Var(&o.item, "item", 0, "only this item's orders")
	fs.BoolVar(&o.oldest, "oldest", false, "oldest orders first")
	fs.StringVar(&o.out, "o", "", "write the export to this file (default: standard output)")
	return o
}

// itemOpts are an item's fields as flags.
type itemOpts struct {
	fs               *flag.FlagSet
	state            *string // listOpts' -state
	name, start, end string
	price, stock     int64
}

func itemFlags(fs *flag.FlagSet, state *string) *itemOpts {
	o := &itemOpts{fs: fs, state: state}
	fs.StringVar(&o.name, "name", "", "the item's name")
	fs.Int64Var(&o.price, "price", 0, "the item's price in cents")
	fs.Int64Var(&o.stock, "stock", 0, "items add: its stock; items update: its new total stock")
	fs.StringVar(&o.start, "start", "", `the item's own start (RFC 3339); "" drops it`)
	fs.StringVar(&o.end, "end", "", `the item's own end (RFC 3339); "" drops it`)
	return o
}

// commandFlags are the flags each command takes; others are refused.
var commandFlags = map[string][]string{
	"activities list":   {"state", "after", "limit", "all"},
	"activities orders": {"status", "item", "oldest", "after", "limit", "all"},
	"activities export": {"status", "item", "oldest", "after", "limit", "o"},
	"activities create": {"file"},
	"activities update": {"file"},
	"items add":         {"file", "name", "price", "stock", "state", "start", "end"},
	"items update":      {"file", "name", "price", "stock", "start", "end"},
	"plugins load":      {"wasm", "config", "order", "fail-policy", "timeout-ms"},
	"limits set":        {"file"},
}

// onlyFlags refuses a flag cmd does not take.
func onlyFlags(fs *flag.FlagSet, cmd string) error {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(commandFlags[cmd], f.Name) {
			bad = append(bad, "-"+f.Name)
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("admin: %s does not take %s", cmd, strings.Join(bad, ", "))
	}
	return nil
}

func (o *listOpts) page() api.PageQuery { return api.PageQuery{After: o.after, Limit: o.limit} }

func (o *listOpts) orders() api.OrderQuery {
	q := api.OrderQuery{PageQuery: o.page(), ItemID: o.item, Oldest: o.oldest}
	for _, s := range strings.Split(o.status, ",") {
		if s = strings.TrimSpace(s); s != "" {
			q.Status = append(q.Status, s)
		}
	}
	return q
}

// activityID reads an activity or item id argument.
func activityID(what, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("admin: %s must be a positive integer, not %q", what, s)
	}
	return id, nil
}

// print writes v as indented JSON.
func (c *adminClient) print(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(b))
	return err
}

// page prints one page as the gateway sent it, and says how to read the next.
func (c *adminClient) page(path string, next func(cursor string) string) error {
	var raw json.RawMessage
	if err := c.api.Do(context.Background(), "GET", path, nil, &raw); err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	if _, err := fmt.Fprintln(c.out, pretty.String()); err != nil {
		return err
	}
	var p struct{ Next string }
	if json.Unmarshal(raw, &p) == nil && p.Next != "" && c.errw != nil {
		fmt.Fprintf(c.errw, "more: %s\n", next(p.Next))
	}
	return nil
}

func (c *adminClient) listActivities(o *listOpts) error {
	ctx := context.Background()
	if !o.all {
		v := url.Values{}
		for k, val := range map[string]string{"state": o.state, "after": o.after, "limit": limitArg(o.limit)} {
			if val != "" {
				v.Set(k, val)
			}
		}
		return c.page(withQuery("/admin/v1/activities", v), func(next string) string {
			return "seckill admin activities list -after " + next + stateArg(o.state)
		})
	}
	all := api.ActivityList{Activities: []api.Activity{}}
	for p := o.page(); ; {
		l, err := c.api.ActivitiesPage(ctx, p, o.state)
		if err != nil {
			return err
		}
		all.Activities = append(all.Activities, l.Activities...)
		if l.Next == "" {
			return c.print(all)
		}
		p.After = l.Next
	}
}

func (c *adminClient) listOrders(arg string, o *listOpts) error {
	id, err := activityID("the activity id", arg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	q := o.orders()
	if !o.all {
		return c.page(withQuery(fmt.Sprintf("/admin/v1/activities/%d/orders", id), orderValues(q)), func(next string) string {
			return fmt.Sprintf("seckill admin activities orders %d -after %s (with the same filters)", id, next)
		})
	}
	all := api.OrderList{Orders: []api.Order{}}
	for {
		l, err := c.api.ActivityOrders(ctx, id, q)
		if err != nil {
			return err
		}
		all.Orders = append(all.Orders, l.Orders...)
		if l.Next == "" {
			return c.print(all)
		}
		q.After = l.Next
	}
}

func (c *adminClient) exportOrders(arg string, o *listOpts) (err error) {
	id, err := activityID("the activity id", arg)
	if err != nil {
		return err
	}
	w := c.out
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return fmt.Errorf("admin: -o: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("admin: -o: %w", cerr)
			}
		}()
		w = f
	}
	return c.api.ExportOrders(context.Background(), id, o.orders(), w)
}

// items runs the item commands: add, update, offline, online.
func (c *adminClient) items(verb string, pos []string, o *itemOpts, file string, body func() ([]byte, error)) error {
	want := 2
	if verb == "add" {
		want = 1
	}
	if len(pos) != want {
		return fmt.Errorf("admin: items %s takes %s", verb, map[int]string{1: "the activity's id", 2: "the activity's and the item's ids"}[want])
	}
	act, err := activityID("the activity id", pos[0])
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/admin/v1/activities/%d/items", act)
	if want == 2 {
		item, err := activityID("the item id", pos[1])
		if err != nil {
			return err
		}
		path += "/" + strconv.FormatInt(item, 10)
	}
	if verb == "offline" || verb == "online" {
		return c.call("POST", path+"/"+verb, nil)
	}
	set := o.given()
	var in any
	switch {
	case file != "" && len(set) > 1:
		return errors.New("admin: give the item's fields either in -file or as flags, not both")
	case file != "":
		b, err := body()
		if err != nil {
			return err
		}
		in = b
	case verb == "add":
		in, err = o.spec(set)
	default:
		in, err = o.change(set)
	}
	if err != nil {
		return err
	}
	if verb == "add" {
		return c.call("POST", path, in)
	}
	return c.call("PUT", path, in)
}

// given are the flags given on the command line.
func (o *itemOpts) given() map[string]bool {
	set := map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// spec is a new item from the flags; -name is required.
func (o *itemOpts) spec(set map[string]bool) (api.ItemSpec, error) {
	if !set["name"] {
		return api.ItemSpec{}, errors.New("admin: items add needs -file or -name")
	}
	return api.ItemSpec{Name: o.name, PriceCents: o.price, Stock: o.stock, State: *o.state, Start: o.start, End: o.end}, nil
}

// change is a change of an item from the flags given.
func (o *itemOpts) change(set map[string]bool) (api.ItemChange, error) {
	var c api.ItemChange
	if set["name"] {
		c.Name = &o.name
	}
	if set["price"] {
		c.PriceCents = &o.price
	}
	if set["stock"] {
		c.TotalStock = &o.stock
	}
	if set["start"] {
		c.Start = &o.start
	}
	if set["end"] {
		c.End = &o.end
	}
	if c == (api.ItemChange{}) {
		return c, errors.New("admin: items update needs -file or a field to change (-name, -price, -stock, -start, -end); take it offline with items offline")
	}
	return c, nil
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func limitArg(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func stateArg(state string) string {
	if state == "" {
		return ""
	}
	return " -state " + state
}

// orderValues is q as the query string of an order list.
func orderValues(q api.OrderQuery) url.Values {
	v := url.Values{}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(q.Status) > 0 {
		v.Set("status", strings.Join(q.Status, ","))
	}
	if q.ItemID != 0 {
		v.Set("item_id", strconv.FormatInt(q.ItemID, 10))
	}
	if q.Oldest {
		v.Set("order", "oldest")
	}
	return v
}
