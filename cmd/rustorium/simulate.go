package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSimulateCmd() *cobra.Command {
	return &cobra.Command{
		Use:  "simulate SCENARIO.yaml",
		Args: cobra.ExactArgs(1),
		RunE: func(*cobra.Command, []string) error { return errors.New("simulate: not built yet") },
	}
}
