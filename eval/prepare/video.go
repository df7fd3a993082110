package prepare

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bmca/bmca/eval/tasks"
)

// ErrNoFFmpeg is wrapped when a video step finds no ffmpeg.
var ErrNoFFmpeg = errors.New("ffmpeg not found")

// ffmpegPath finds the ffmpeg command or says how to install it.
func (e *env) ffmpegPath() (string, error) {
	p, err := exec.LookPath(e.opts.FFmpeg)
	if err != nil {
		return "", fmt.Errorf("%w (%q): video frames are extracted with ffmpeg; install it (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; conda: conda install -c conda-forge ffmpeg) or pass --ffmpeg PATH", ErrNoFFmpeg, e.opts.FFmpeg)
	}
	return p, nil
}

// videoFrames extracts every Every-th frame of each video (frame numbers
// counted from 0, so frame k*Every is kept: exactly the frames Cholec80's
// tool annotation lists at 25 fps) and writes the phase and tool tables.
func (e *env) videoFrames(ctx context.Context, s *tasks.VideoFramesStep) error {
	ffmpeg, err := e.ffmpegPath()
	if err != nil {
		return err
	}
	ids, err := tasks.ParseIDRange(s.IDs)
	if err != nil {
		return err
	}
	var phaseRows, toolRows []labelled
	bar := countBar(e.log, len(ids), "extract frames")
	defer bar.Finish()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := fmt.Sprintf("%02d", id)
		video := e.path(strings.ReplaceAll(s.Video, "{id}", name))
		dir := filepath.Join(e.path(s.Frames), "video"+name)
		frames, err := extractFrames(ctx, ffmpeg, video, dir, s.Every)
		if err != nil {
			return err
		}
		frameFile := func(frame int) (string, bool) {
			k := frame / s.Every
			if frame%s.Every != 0 || k >= frames {
				return "", false
			}
			return filepath.Join(dir, fmt.Sprintf("%06d.jpg", k+1)), true
		}
		if s.Phase != "" {
			ann := e.path(strings.ReplaceAll(s.Phase, "{id}", name))
			rows, err := readAnnotation(ann)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if f, ok := frameFile(r.frame); ok {
					phaseRows = append(phaseRows, labelled{src: f, label: r.cells[0]})
				}
			}
		}
		if s.Tools != "" {
			ann := e.path(strings.ReplaceAll(s.Tools, "{id}", name))
			rows, err := readAnnotation(ann)
			if err != nil {
				return err
			}
			for _, r := range rows {
				f, ok := frameFile(r.frame)
				if !ok {
					continue
				}
				present := ""
				n := 0
				for j, c := range r.cells {
					if c == "1" {
						present, n = r.header[j], n+1
					}
				}
				if n == 1 {
					toolRows = append(toolRows, labelled{src: f, label: present})
				}
			}
		}
		_ = bar.Add(1)
	}
	if s.PhaseOut != "" {
		if err := e.emit(ctx, s.PhaseOut, phaseRows, "", tasks.NoConvert, "", ""); err != nil {
			return err
		}
	}
	if s.ToolsOut != "" {
		return e.emit(ctx, s.ToolsOut, toolRows, "", tasks.NoConvert, "", "")
	}
	return nil
}

// extractFrames runs ffmpeg once per video (skipped when a previous run
// finished it) and returns how many frames it wrote, named 000001.jpg….
func extractFrames(ctx context.Context, ffmpeg, video, dir string, every int) (int, error) {
	done := filepath.Join(dir, ".done")
	if data, err := os.ReadFile(done); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			return n, nil
		}
	}
	if _, err := os.Stat(video); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", video,
		"-vf", fmt.Sprintf(`select=not(mod(n\,%d))`, every), "-vsync", "vfr", "-q:v", "2",
		filepath.Join(dir, "%06d.jpg"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ffmpeg on %s: %w: %s", video, err, strings.TrimSpace(string(out)))
	}
	matches, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil {
		return 0, err
	}
	if len(matches) == 0 {
		return 0, fmt.Errorf("ffmpeg wrote no frames for %s", video)
	}
	return len(matches), writeAtomic(done, []byte(strconv.Itoa(len(matches))))
}

// annotationRow is one line of a Cholec80-style annotation: a frame number
// then tab-separated cells, under a header naming the columns.
type annotationRow struct {
	frame  int
	cells  []string
	header []string // names of cells
}

func readAnnotation(file string) ([]annotationRow, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var header []string
	var rows []annotationRow
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(strings.TrimSpace(sc.Text()))
		if len(fields) == 0 {
			continue
		}
		if header == nil {
			if len(fields) < 2 || fields[0] != "Frame" {
				return nil, fmt.Errorf("%s:%d: want a header starting with Frame, got %q", file, line, sc.Text())
			}
			header = fields[1:]
			continue
		}
		n, err := strconv.Atoi(fields[0])
		if err != nil || len(fields) != len(header)+1 {
			return nil, fmt.Errorf("%s:%d: want a frame number and %d cells, got %q", file, line, len(header), sc.Text())
		}
		rows = append(rows, annotationRow{frame: n, cells: fields[1:], header: header})
	}
	return rows, sc.Err()
}
