// tlogcheck reads one chain of a kchain archive (a local directory in the C2SP tlog-tiles
// layout) with the Go reference implementation of transparency logs,
// golang.org/x/mod/sumdb/tlog and sumdb/note, knowing nothing of kchain:
//
//	checkpoint           note.Open with the writer's verifier key; origin, size, root
//	tile/<L>/<N>[.p/W]   tlog.TileHashReader (checks every tile it reads against the root)
//	                     tlog.TreeHash == the checkpoint's root
//	tile/entries/<N>...  each entry's tlog.RecordHash, proved with tlog.ProveRecord and
//	                     checked with tlog.CheckRecord against the root
//
// Usage: tlogcheck CHAIN_DIR VKEY. Prints "ok SIZE ROOT" and exits 0, or prints why and
// exits 1. Built by the test in GOPATH mode against Debian's golang-golang-x-mod-dev, so it
// needs no network (scripts/go-env.sh).
package main

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileReader reads the tiles of a tlog-tiles directory. sumdb names a tile
// "tile/8/<L>/<N>" (its height first); tlog-tiles fixes the height at 8 and drops it.
type tileReader struct{ dir string }

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
		data, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

// checkpoint opens and verifies the signed note and parses its first three lines.
func checkpoint(dir, vkey string) (string, tlog.Tree) {
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("checkpoint body has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		fail("checkpoint size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("checkpoint root %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], root)
	return lines[0], tlog.Tree{N: size, Hash: h}
}

// entries reads the entry bundles of a tree of size n: (uint16 BE length || data)*.
func entries(dir string, n int64) [][]byte {
	var out [][]byte
	for start := int64(0); start < n; start += 256 {
		w := n - start
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: 0, N: start / 256, W: int(w)}
		p := "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/0/")
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			fail("entry bundle: %v", err)
		}
		for k := int64(0); k < w; k++ {
			if len(data) < 2 {
				fail("%s ends inside entry %d", p, k)
			}
			l := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+l {
				fail("%s ends inside entry %d", p, k)
			}
			out = append(out, data[2:2+l])
			data = data[2+l:]
		}
		if len(data) != 0 {
			fail("%s has bytes after its %d entries", p, w)
		}
	}
	return out
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: tlogcheck CHAIN_DIR VKEY")
	}
	dir, vkey := os.Args[1], os.Args[2]
	origin, tree := checkpoint(dir, vkey)
	hr := tlog.TileHashReader(tree, tileReader{dir})
	root, err := tlog.TreeHash(tree.N, hr)
	if err != nil {
		fail("tree hash from the tiles: %v", err)
	}
	if root != tree.Hash {
		fail("tree hash %v, checkpoint root %v", root, tree.Hash)
	}
	for i, e := range entries(dir, tree.N) {
		p, err := tlog.ProveRecord(tree.N, int64(i), hr)
		if err != nil {
			fail("proof of entry %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, tree.N, tree.Hash, int64(i), tlog.RecordHash(e)); err != nil {
			fail("entry %d: %v", i, err)
		}
	}
	fmt.Printf("ok %s %d %v\n", origin, tree.N, tree.Hash)
}
