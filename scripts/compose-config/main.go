// compose-config: `docker compose config` without Docker, for the tests of docker-compose.yml.
//
// It loads a compose file with compose-go, the loader `docker compose` itself is built on: the
// same schema validation, interpolation, merges and normalisation. It prints the resolved project
// as YAML, or the loader's error on stderr and exits 1.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-config FILE...")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(os.Args[1:], cli.WithOsEnv, cli.WithDotEnv, cli.WithName("compose-config"))
	fail(err)
	project, err := options.LoadProject(context.Background())
	fail(err)
	out, err := project.MarshalYAML()
	fail(err)
	_, err = os.Stdout.Write(out)
	fail(err)
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
