package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/internal/torch"
)

// synthDir is a tiny synthetic dataset shared by the tests: 3 classes,
// 32×32 images, 16 training and 8 validation images.
var synthDir string

const synthClasses = 3

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "l2g-activities-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	synthDir = filepath.Join(dir, "data")
	o := synth.DefaultOptions()
	o.Classes, o.Train, o.Val, o.Width, o.Height, o.Workers = synthClasses, 16, 8, 32, 32, 2
	if _, err := synth.Generate(context.Background(), synthDir, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// One libtorch thread: the machine is shared.
	if err := torch.SetNumThreads(1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testData is the dataset section for synthDir.
func testData(root string) runconfig.Data {
	d := runconfig.Default().Data
	d.Root = root
	return d
}

// testStage is a stage of run id under root.
func testStage(root, id, name string) Stage {
	return Stage{Run: Run{ID: id, Root: root}, Name: name}
}
