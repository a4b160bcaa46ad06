package domain

// Page bounds a list's page: Default when the caller names no limit, at most Max.
type Page struct{ Default, Max int }

// The lists' pages. A shopper's orders and the activities come, by default, as many
// at once as before they had pages.
var (
	ShopperOrdersPage  = Page{Default: 200, Max: 200}
	ActivitiesPage     = Page{Default: 500, Max: 500}
	ActivityOrdersPage = Page{Default: 100, Max: 1000}
)

// Limit is n as a page's size: the default for 0, bad_request outside 1 to Max.
func (p Page) Limit(n int) (int, error) {
	switch {
	case n == 0:
		return p.Default, nil
	case n < 0 || n > p.Max:
		return 0, Errorf(EBadRequest, "limit must be 1 to %d", p.Max)
	}
	return n, nil
}
