// Package build is minidock's builder, Docker's classic one: a Dockerfile
// becomes an image by nothing but the engine's own parts in a loop. For
// each instruction it either changes the image config (ENV, CMD, LABEL,
// ... make a new image with the same layers) or makes a container on the
// previous step's image (RUN runs a process in it; COPY, ADD and WORKDIR
// write into its root filesystem), then commits the container's upper
// directory as one more layer. Every step's image is remembered under a
// cache key, so that a rebuild with nothing changed makes no container.
// See docs/build.md; Backend is what it asks of the engine.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"

	"minidock/image"
)

// Options are a build's settings (the query of POST /build).
type Options struct {
	// Dockerfile is the Dockerfile's path in the context ("Dockerfile").
	Dockerfile string
	// Tags are the references the final image gets (-t).
	Tags []string
	// BuildArgs are --build-arg's values; a nil value is a name given
	// without one (the ARG's default stays).
	BuildArgs map[string]*string
	// Target is the stage to build (--target); "" is the last.
	Target string
	// NoCache builds every step anew (--no-cache).
	NoCache bool
	// Pull pulls every FROM image even when the store has it.
	Pull bool
	// KeepContainers keeps each successful step's container (--rm=false).
	// A failed step's container is always removed: a failed build
	// leaves nothing behind (Docker keeps it unless --force-rm).
	KeepContainers bool
	// Labels are added to the final image, as one more LABEL step.
	Labels map[string]string
	// NetworkMode is RUN's network: "default", "host", "none".
	NetworkMode string
	// Platform is the default platform of FROM ("" or linux/amd64).
	Platform string
	// Quiet writes only the final image ID (and errors).
	Quiet bool
	// TempDir is where the spool file of a context too large for memory
	// goes (os.TempDir() if "").
	TempDir string
}

// ExitError is a RUN whose process exited with a non-zero code.
type ExitError struct {
	Cmd  []string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("the command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// isProxyArg tells the build args every Dockerfile may use without an
// ARG. They reach RUN's environment but not the history or the cache key.
func isProxyArg(name string) bool {
	switch name {
	case "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
		"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy":
		return true
	}
	return false
}

// defaultPath is the PATH a stage gets when its base image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Build builds the image described by the Dockerfile of the build
// context contextTar (a tar stream, as the client sends it) and returns
// its ID. Progress goes to out as Docker's JSON stream messages
// ({"stream":...}, {"aux":{"ID":...}}, and {"errorDetail":...} for the
// error Build also returns), ready to be streamed as it is.
func Build(ctx context.Context, backend Backend, opts Options, contextTar io.Reader, out io.Writer) (string, error) {
	s := &stream{w: out, quiet: opts.Quiet}
	id, err := build(ctx, backend, opts, contextTar, s)
	if err != nil {
		s.fail(err)
		return "", err
	}
	return id, nil
}

// builder is one build in progress.
type builder struct {
	ctx     context.Context
	backend Backend
	opts    Options
	out     *stream
	plan    *plan
	context *contextTree // the build context, indexed

	meta     map[string]string      // values of the ARGs before the first FROM
	results  map[int]*state         // each built stage's last state
	mounted  map[string]*sourceTree // images mounted for COPY --from, by ID
	consumed map[string]bool        // build args an ARG declared
	step     int                    // steps printed so far
	steps    int                    // steps in all
	tags     []image.Reference      // opts.Tags, parsed
	labels   *labelCmd              // opts.Labels as a LABEL step
}

// state is a stage being built: the image so far and the config the next
// image gets.
type state struct {
	stage  *stage
	image  string // the image so far; "" is the empty image (scratch)
	config image.RunConfig
	author string
	args   map[string]*string // the ARGs declared in this stage, nil: no value
	cmdSet bool               // CMD was given in this stage: ENTRYPOINT keeps it
}

// build runs a build: read the context, parse the Dockerfile, plan the
// stages, build the needed ones in order, tag the last.
func build(ctx context.Context, backend Backend, opts Options, contextTar io.Reader, out *stream) (string, error) {
	b := &builder{ctx: ctx, backend: backend, opts: opts, out: out,
		meta: map[string]string{}, results: map[int]*state{}, mounted: map[string]*sourceTree{}, consumed: map[string]bool{}}
	if err := b.checkOptions(); err != nil {
		return "", err
	}
	defer b.releaseSources()

	// 1. The context, and the Dockerfile in it.
	tree, dfData, err := openContext(contextTar, b.opts.TempDir, b.opts.Dockerfile)
	if err != nil {
		return "", err
	}
	b.context = tree
	defer tree.remove()

	// 2. Parse it, and cut it into stages.
	df, err := Parse(strings.NewReader(string(dfData)))
	if err == nil {
		b.plan, err = newPlan(df)
	}
	var le *LineError
	if errors.As(err, &le) {
		le.File = b.opts.Dockerfile
	}
	if err != nil {
		return "", err
	}

	// 3. The ARGs before the first FROM, then the stages the target needs.
	if err := b.metaArgs(); err != nil {
		return "", err
	}
	target, err := b.plan.target(b.opts.Target)
	if err != nil {
		return "", err
	}
	stages, err := b.plan.needed(target, b.metaExpander())
	if err != nil {
		return "", b.inFile(err)
	}
	b.steps = len(b.plan.metaArgs)
	for _, st := range stages {
		b.steps += 1 + len(st.commands)
	}
	if b.labels != nil {
		b.steps++
	}
	for _, a := range b.plan.metaArgs {
		b.printStep(a.ins)
	}

	// 4. Each stage: FROM, then one step per instruction.
	for _, st := range stages {
		s, err := b.buildStage(st, st == target)
		if err != nil {
			return "", b.inFile(err)
		}
		b.results[st.index] = s
	}
	final := b.results[target.index].image
	if final == "" {
		return "", errors.New("no image was generated: the target stage is FROM scratch with no step")
	}

	// 5. Report and tag.
	b.warnUnusedArgs()
	b.out.aux(final)
	if b.opts.Quiet {
		b.out.final(final + "\n")
	}
	b.out.printf("Successfully built %s\n", short(final))
	for _, r := range b.tags {
		if err := b.backend.TagImage(ctx, final, r.String()); err != nil {
			return "", fmt.Errorf("tag %s: %w", r.FamiliarString(), err)
		}
		b.out.printf("Successfully tagged %s\n", r.FamiliarString())
	}
	return final, nil
}

// checkOptions refuses bad options before anything is done.
func (b *builder) checkOptions() error {
	if b.opts.Dockerfile == "" {
		b.opts.Dockerfile = "Dockerfile"
	}
	if b.opts.TempDir == "" {
		b.opts.TempDir = os.TempDir()
	}
	if b.opts.NetworkMode == "" {
		b.opts.NetworkMode = "default"
	}
	if err := checkPlatform(b.opts.Platform); err != nil {
		return err
	}
	if p := path.Clean(b.opts.Dockerfile); path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("the Dockerfile %q must be inside the build context", b.opts.Dockerfile)
	}
	for _, t := range b.opts.Tags {
		r, err := image.ParseReference(t)
		if err == nil && r.Digest != "" {
			err = errors.New("a tag cannot contain a digest")
		}
		if err != nil {
			return fmt.Errorf("invalid tag %q: %w", t, err)
		}
		b.tags = append(b.tags, r)
	}
	if len(b.opts.Labels) > 0 {
		keys := sortedKeys(b.opts.Labels)
		c := &labelCmd{at: at{&Instruction{Cmd: "LABEL"}}}
		var text []string
		for _, k := range keys {
			c.pairs = append(c.pairs, rawPair{quoteWord(k), quoteWord(b.opts.Labels[k])})
			text = append(text, fmt.Sprintf("%q=%q", k, b.opts.Labels[k]))
		}
		c.ins.Original = "LABEL " + strings.Join(text, " ")
		b.labels = c
	}
	return nil
}

// quoteWord quotes s so that substitution gives it back as it is.
func quoteWord(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

func checkPlatform(p string) error {
	switch p {
	case "", "linux", "linux/" + runtime.GOARCH:
		return nil
	}
	return fmt.Errorf("platform %q is not supported: this builder makes linux/%s images", p, runtime.GOARCH)
}

// inFile names the Dockerfile in a line error.
func (b *builder) inFile(err error) error {
	var le *LineError
	if errors.As(err, &le) && le.File == "" {
		le.File = b.opts.Dockerfile
	}
	return err
}

// metaArgs gives the ARGs before the first FROM their values: the build
// arg, else the default (which may use the ARGs before it).
func (b *builder) metaArgs() error {
	ex := b.metaExpander()
	for _, a := range b.plan.metaArgs {
		for _, d := range a.args {
			b.consumed[d.name] = true
			if v := b.opts.BuildArgs[d.name]; v != nil {
				b.meta[d.name] = *v
			} else if d.value != nil {
				v, err := ex.word(*d.value)
				if err != nil {
					return b.inFile(lineError(a.ins.Line, "ARG %s: %v", d.name, err))
				}
				b.meta[d.name] = v
			}
		}
	}
	return nil
}

// metaExpander substitutes with the meta ARGs: FROM's and --from's words.
func (b *builder) metaExpander() *expander {
	return &expander{escape: b.plan.escape, lookup: func(n string) (string, bool) {
		v, ok := b.meta[n]
		return v, ok
	}}
}

// expander substitutes with a stage's variables: its ENV, then its ARGs.
func (b *builder) expander(s *state) *expander {
	return &expander{escape: b.plan.escape, lookup: func(n string) (string, bool) {
		if v, ok := getEnv(s.config.Env, n); ok {
			return v, true
		}
		if v := s.args[n]; v != nil {
			return *v, true
		}
		return "", false
	}}
}

// buildStage builds one stage: FROM, then each instruction in turn.
func (b *builder) buildStage(st *stage, final bool) (*state, error) {
	s, err := b.from(st)
	if err != nil {
		return nil, err
	}
	for _, c := range st.commands {
		if b.ctx.Err() != nil { // the client hung up: no further step
			return nil, fmt.Errorf("build cancelled: %w", context.Cause(b.ctx))
		}
		b.printStep(c.source())
		if err := b.dispatch(s, c); err != nil {
			return nil, lineError(c.source().Line, "%s: %w", c.source().Cmd, err)
		}
	}
	if final && b.labels != nil {
		b.printStep(b.labels.ins)
		if err := b.dispatch(s, b.labels); err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
	}
	return s, nil
}

// from starts a stage on its base: an earlier stage, scratch (the empty
// image), or an image from the store (pulled when missing). Then the
// base's ONBUILD triggers run, as if they were the stage's first steps.
func (b *builder) from(st *stage) (*state, error) {
	c := st.from
	b.printStep(c.ins)
	fail := func(err error) (*state, error) { return nil, lineError(c.ins.Line, "FROM: %w", err) }
	ex := b.metaExpander()
	name, err := ex.word(c.image)
	if err != nil {
		return fail(err)
	}
	platform, err := ex.word(c.platform)
	if err != nil {
		return fail(err)
	}
	if platform == "" {
		platform = b.opts.Platform
	}
	if err := checkPlatform(platform); err != nil {
		return fail(err)
	}
	s := &state{stage: st, args: map[string]*string{}}
	switch dep := b.plan.stageNamed(name, st.index); {
	case dep != nil:
		s.image, s.config = b.results[dep.index].image, cloneConfig(b.results[dep.index].config)
	case name == "scratch":
	case name == "":
		return fail(fmt.Errorf("%q names no image", c.image))
	default:
		img, err := b.backend.GetImage(b.ctx, name, GetImageOptions{Pull: b.opts.Pull, Platform: platform, Out: b.out.raw()})
		if err != nil {
			return fail(err)
		}
		s.image, s.config = img.ID, cloneConfig(img.Config)
	}
	if _, ok := getEnv(s.config.Env, "PATH"); !ok {
		s.config.Env = append(s.config.Env, "PATH="+defaultPath)
	}
	if s.image != "" {
		b.out.printf(" ---> %s\n", short(s.image))
	}
	triggers := s.config.OnBuild
	s.config.OnBuild = nil // an image does not pass its triggers on
	if len(triggers) > 0 {
		b.out.printf("# Executing %d build trigger%s\n", len(triggers), plural(len(triggers)))
	}
	for _, t := range triggers {
		tc, err := parseTrigger(t, b.plan.escape)
		if err == nil {
			err = b.dispatch(s, tc)
		}
		if err != nil {
			return fail(fmt.Errorf("ONBUILD trigger %q of the base image: %w", t, err))
		}
	}
	return s, nil
}

// dispatch runs one instruction on the stage: RUN runs a container, COPY,
// ADD and WORKDIR write into one, the others only change the config.
func (b *builder) dispatch(s *state, c command) error {
	switch c := c.(type) {
	case *runCmd:
		return b.run(s, c)
	case *copyCmd:
		return b.copy(s, c)
	case *workdirCmd:
		return b.workdir(s, c)
	}
	text, err := b.applyConfig(s, c)
	if err != nil {
		return err
	}
	return b.commitConfig(s, b.nop(s, " "+text))
}

// printStep writes "Step N/M : INSTRUCTION".
func (b *builder) printStep(ins *Instruction) {
	b.step++
	b.out.printf("Step %d/%d : %s\n", b.step, b.steps, ins.Original)
}

// nop is a config step's created_by: Docker's "/bin/sh -c #(nop) ...".
func (b *builder) nop(s *state, text string) string {
	return strings.Join(shellOf(s), " ") + " #(nop) " + text
}

func shellOf(s *state) []string {
	if len(s.config.Shell) > 0 {
		return s.config.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// cacheKey is a step's identity: the image it starts from, the config the
// new image gets, and what the step does (its created_by, which holds the
// substituted instruction, RUN's build args and COPY's content digest).
// The same key means the same image.
func cacheKey(parent string, cfg *image.RunConfig, author, createdBy string) string {
	h := sha256.New()
	json.NewEncoder(h).Encode(struct {
		Parent    string
		Config    *image.RunConfig
		Author    string
		CreatedBy string
	}{parent, cfg, author, createdBy})
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// cached looks the step up by key: on a hit the stage moves on to the
// cached image, and no container is made.
func (b *builder) cached(s *state, keys ...string) (bool, error) {
	if b.opts.NoCache {
		return false, nil
	}
	for _, key := range keys {
		id, err := b.backend.CachedImage(b.ctx, key)
		if err != nil {
			return false, fmt.Errorf("build cache: %w", err)
		}
		if id != "" {
			s.image = id
			b.out.printf(" ---> Using cache\n ---> %s\n", short(id))
			return true, nil
		}
	}
	return false, nil
}

// commitConfig makes a config step's image: the same layers, the new
// config, one more history entry (empty_layer).
func (b *builder) commitConfig(s *state, createdBy string) error {
	key := cacheKey(s.image, &s.config, s.author, createdBy)
	if hit, err := b.cached(s, key); hit || err != nil {
		return err
	}
	id, err := b.backend.CreateImage(b.ctx, s.image, Commit{Config: cloneConfig(s.config), Author: s.author, CreatedBy: createdBy, CacheKeys: []string{key}})
	if err != nil {
		return err
	}
	s.image = id
	b.out.printf(" ---> %s\n", short(id))
	return nil
}

// run is RUN: a container on the stage's image runs the command with the
// image's environment and the build args in scope; its output goes to
// the stream; on exit 0 its changes are committed as a layer and it is
// removed. A failing command stops the build with its exit code, and its
// container is removed: no container, mount or layer is left behind.
func (b *builder) run(s *state, c *runCmd) error {
	argv := runArgv(s, c)
	env, argsText := b.runEnv(s)
	createdBy := argsText + strings.Join(argv, " ")
	key := cacheKey(s.image, &s.config, s.author, createdBy)
	if hit, err := b.cached(s, key); hit || err != nil {
		return err
	}
	ctr, err := b.backend.CreateContainer(b.ctx, ContainerConfig{
		Image: s.image, Cmd: argv, Env: env, User: s.config.User,
		WorkingDir: s.config.WorkingDir, NetworkMode: b.opts.NetworkMode,
	})
	if err != nil {
		return err
	}
	b.out.printf(" ---> Running in %s\n", short(ctr.ID))
	code, err := b.backend.RunContainer(b.ctx, ctr.ID, b.out.output())
	if err == nil && code != 0 {
		err = &ExitError{Cmd: argv, Code: code}
	}
	if err != nil {
		return errors.Join(err, b.removeContainer(ctr.ID, true))
	}
	return b.commitContainer(s, ctr.ID, createdBy, key)
}

// commitContainer commits a step's container as the stage's next image,
// then removes it (unless KeepContainers).
func (b *builder) commitContainer(s *state, id, createdBy string, keys ...string) error {
	img, err := b.backend.CommitContainer(b.ctx, id, Commit{Config: cloneConfig(s.config), Author: s.author, CreatedBy: createdBy, CacheKeys: keys})
	if err != nil {
		return errors.Join(err, b.removeContainer(id, true))
	}
	if err := b.removeContainer(id, false); err != nil {
		return err
	}
	s.image = img
	b.out.printf(" ---> %s\n", short(img))
	return nil
}

// workdir is WORKDIR: the config's working directory (a relative path
// goes on from the previous one). A container on the stage's image makes
// the directory when it lacks it (owned by root, 0755) and is committed:
// a layer, or an empty_layer entry when the directory was there.
func (b *builder) workdir(s *state, c *workdirCmd) error {
	p, err := b.expander(s).word(c.path)
	if err != nil {
		return err
	}
	if !path.IsAbs(p) {
		wd := s.config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		p = path.Join(wd, p)
	}
	s.config.WorkingDir = path.Clean(p)
	createdBy := b.nop(s, "WORKDIR "+s.config.WorkingDir)
	key := cacheKey(s.image, &s.config, s.author, createdBy)
	if hit, err := b.cached(s, key); hit || err != nil {
		return err
	}
	ctr, err := b.backend.CreateContainer(b.ctx, ContainerConfig{Image: s.image, NetworkMode: "none"})
	if err != nil {
		return err
	}
	if err := writeSources(ctr.Root, s.config.WorkingDir, true, nil, "", nil); err != nil {
		return errors.Join(err, b.removeContainer(ctr.ID, true))
	}
	return b.commitContainer(s, ctr.ID, createdBy, key)
}

// removeContainer removes a step's container: always after a failure,
// after a success unless KeepContainers. It runs even when the build's
// context is cancelled: a cancelled build must not leave it behind.
func (b *builder) removeContainer(id string, failed bool) error {
	if b.opts.KeepContainers && !failed {
		return nil
	}
	if !failed {
		b.out.printf("Removing intermediate container %s\n", short(id))
	}
	if err := b.backend.RemoveContainer(context.WithoutCancel(b.ctx), id); err != nil {
		return fmt.Errorf("remove container %s: %w", short(id), err)
	}
	return nil
}

// runArgv is RUN's process: the exec form as it is; the shell form run by
// SHELL (default /bin/sh -c). With here-documents, a RUN that is only
// "<<EOF" runs the document as its script (with its #! interpreter when it
// has one); else the documents follow the line, for the shell to read.
func runArgv(s *state, c *runCmd) []string {
	if c.isExec() {
		return c.argv(nil)
	}
	docs := c.ins.Heredocs
	if len(docs) == 0 {
		return c.argv(shellOf(s))
	}
	if len(docs) == 1 && strings.TrimSpace(c.shell) == rawHeredocWord(c.shell) {
		script := docs[0].Content
		if interp, rest, ok := strings.Cut(script, "\n"); ok && strings.HasPrefix(interp, "#!") {
			line := strings.TrimSpace(interp[2:]) + " <<'MINIDOCK_SCRIPT'\n" + rest + "MINIDOCK_SCRIPT"
			return append(append([]string(nil), shellOf(s)...), line)
		}
		return append(append([]string(nil), shellOf(s)...), strings.TrimSuffix(script, "\n"))
	}
	var line strings.Builder
	line.WriteString(c.shell)
	for _, d := range docs {
		line.WriteString("\n" + d.Content + d.Name)
	}
	return append(append([]string(nil), shellOf(s)...), line.String())
}

// rawHeredocWord returns the line's first word that is a here-document.
func rawHeredocWord(line string) string {
	for _, w := range rawWords(line, '\\') {
		if _, ok := heredocWord(w); ok {
			return w
		}
	}
	return ""
}

// runEnv is RUN's environment: the image's ENV, then the build args in
// scope that ENV does not set (and the proxy args given), and the
// history's "|N K=V ..." prefix naming those args (proxies left out).
func (b *builder) runEnv(s *state) ([]string, string) {
	env := append([]string(nil), s.config.Env...)
	var named []string
	for _, k := range sortedKeys(s.args) {
		v := s.args[k]
		if v == nil {
			continue
		}
		if _, set := getEnv(s.config.Env, k); set {
			continue
		}
		env = append(env, k+"="+*v)
		named = append(named, k+"="+*v)
	}
	for _, k := range sortedKeys(b.opts.BuildArgs) {
		v := b.opts.BuildArgs[k]
		if isProxyArg(k) && v != nil && s.args[k] == nil {
			if _, set := getEnv(s.config.Env, k); !set {
				env = append(env, k+"="+*v)
			}
		}
	}
	if len(named) == 0 {
		return env, ""
	}
	return env, fmt.Sprintf("|%d %s ", len(named), strings.Join(named, " "))
}

// warnUnusedArgs names the build args no ARG declared, as Docker does.
func (b *builder) warnUnusedArgs() {
	var unused []string
	for _, k := range sortedKeys(b.opts.BuildArgs) {
		if !b.consumed[k] && !isProxyArg(k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		b.out.printf("[Warning] One or more build-args %v were not consumed\n", unused)
	}
}

// releaseSources removes the containers that held images for COPY --from.
func (b *builder) releaseSources() {
	for id, t := range b.mounted {
		t.remove()
		delete(b.mounted, id)
	}
}

// short is the 12-digit form of an image or container ID.
func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// getEnv finds KEY in a KEY=VALUE list.
func getEnv(env []string, key string) (string, bool) {
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// setEnv sets KEY=value in a list, in place of an earlier value.
func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// cloneConfig copies a config deeply enough that steps never share slices
// or maps.
func cloneConfig(c image.RunConfig) image.RunConfig {
	b, _ := json.Marshal(c)
	var out image.RunConfig
	json.Unmarshal(b, &out)
	return out
}
