// Command gen writes docs/CONFIGURATION.md from the settings table of package config.
// `make docs` runs it from the repository's root.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/seckill/flashsale/config"
)

func main() {
	out := flag.String("o", filepath.Join("docs", "CONFIGURATION.md"), "the file to write")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "config/gen:", err)
		os.Exit(1)
	}
}

func write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, config.Markdown(), 0o644)
}
