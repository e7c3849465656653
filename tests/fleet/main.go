// Command collectord-fleet runs Go programs for collectord's tests to scrape.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "collectord-fleet: usage: collectord-fleet [flags]")
	os.Exit(2)
}
