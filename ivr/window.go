package ivr

import "strings"

// WindowProblems checks a daily window — from–to on days, closed on holidays, workdays
// (调休) taking Monday's rule — by the routes' own rules (Route.Validate), with paths that
// name the window's fields: "from", "to", "days[1]", "holidays[0]". The campaigns' calling
// windows (config's callback.window and the API's) are checked with it.
func WindowProblems(from, to string, days, holidays, workdays []string) []FieldError {
	r := Route{Number: "window", Queue: "window", ClosedMenu: "window",
		Hours: []Hours{{Days: days, Open: from, Close: to}}, Holidays: holidays, Workdays: workdays}
	errs := r.Validate("", map[string]Menu{"window": {}}, nil)
	for i := range errs {
		switch p := errs[i].Path; {
		case p == "hours[0].open":
			errs[i].Path = "from"
		case p == "hours[0].close":
			errs[i].Path = "to"
		default:
			errs[i].Path = strings.TrimPrefix(p, "hours[0].")
		}
	}
	return errs
}
