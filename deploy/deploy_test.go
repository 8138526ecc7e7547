package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/scenarios"
)

// The objects of the Kubernetes example the checks below tie together.
const (
	namespace     = "rustorium"
	nodesName     = "rustorium" // the StatefulSet and its headless Service
	clusterCM     = "rustorium-cluster"
	clusterKey    = "cluster.yaml"
	scenarioCM    = "rustorium-scenario"
	scenarioKey   = "scenario.yaml"
	keysSecret    = "rustorium-node-keys"
	resultsClaim  = "rustorium-results"
	loadgenJob    = "rustorium-loadgen"
	mergeJob      = "rustorium-merge"
	topicsJob     = "rustorium-topics"
	resultsFolder = "/results"
)

// object is the part of a Kubernetes object the checks read; Spec is
// decoded again by kind.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`

	file string
	line int
}

func (o *object) String() string {
	return fmt.Sprintf("%s:%d: %s %s", o.file, o.line, o.Kind, o.Metadata.Name)
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		RestartPolicy  string      `yaml:"restartPolicy"`
		Containers     []container `yaml:"containers"`
		InitContainers []container `yaml:"initContainers"`
		Volumes        []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name  string `yaml:"name"`
				Items []struct {
					Key string `yaml:"key"`
				} `yaml:"items"`
			} `yaml:"configMap"`
			Secret *struct {
				SecretName string `yaml:"secretName"`
				Items      []struct {
					Key string `yaml:"key"`
				} `yaml:"items"`
			} `yaml:"secret"`
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

// argv is the container's command line, command then args.
func (c *container) argv() []string { return append(slices.Clone(c.Command), c.Args...) }

// script is the text of a `sh -c SCRIPT` container, or "".
func (c *container) script() string {
	argv := c.argv()
	if len(argv) >= 3 && (argv[0] == "sh" || argv[0] == "bash") && argv[1] == "-c" {
		return argv[2]
	}
	return ""
}

// env is the value of the container's variable name ("" when unset).
func (c *container) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// flag is the value following --name in argv ("" when absent).
func flag(argv []string, name string) string {
	for i, a := range argv {
		if a == "--"+name && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

// mountOf returns the container's mount of volume name.
func (c *container) mountOf(name string) (mountPath, subPath string, ok bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m.MountPath, m.SubPath, true
		}
	}
	return "", "", false
}

type statefulSetSpec struct {
	ServiceName         string `yaml:"serviceName"`
	Replicas            int    `yaml:"replicas"`
	PodManagementPolicy string `yaml:"podManagementPolicy"`
	Selector            struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template             podTemplate `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	} `yaml:"volumeClaimTemplates"`
}

type jobSpec struct {
	CompletionMode string      `yaml:"completionMode"`
	Completions    *int        `yaml:"completions"`
	Parallelism    *int        `yaml:"parallelism"`
	Template       podTemplate `yaml:"template"`
}

type serviceSpec struct {
	ClusterIP                string            `yaml:"clusterIP"`
	PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
	Selector                 map[string]string `yaml:"selector"`
	Ports                    []struct {
		Name     string `yaml:"name"`
		Port     int    `yaml:"port"`
		Protocol string `yaml:"protocol"`
	} `yaml:"ports"`
}

// manifests are the objects of every YAML file under deploy/, read once.
type manifests struct {
	objs []*object
}

// loadManifests parses every YAML document under root (a directory tree):
// a syntax error, an empty document or one without apiVersion, kind or
// metadata.name is an error.
func loadManifests(root string) (*manifests, error) {
	m := &manifests{}
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for doc := 1; ; doc++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: document %d: %w", p, doc, err))
				break // the decoder cannot resync after a syntax error
			}
			o := &object{file: p, line: n.Line}
			if len(n.Content) > 0 {
				o.line = n.Content[0].Line
			}
			if err := n.Decode(o); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w", p, o.line, err))
				continue
			}
			for field, v := range map[string]string{"apiVersion": o.APIVersion, "kind": o.Kind, "metadata.name": o.Metadata.Name} {
				if v == "" {
					errs = append(errs, fmt.Errorf("%s:%d: document %d has no %s", p, o.line, doc, field))
				}
			}
			m.objs = append(m.objs, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, errors.Join(errs...)
}

// get returns the object of kind and name, or nil.
func (m *manifests) get(kind, name string) *object {
	for _, o := range m.objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

// mustGet returns the object of kind and name, failing t without it.
func (m *manifests) mustGet(t *testing.T, kind, name string) *object {
	t.Helper()
	o := m.get(kind, name)
	if o == nil {
		t.Fatalf("no %s %s under deploy/", kind, name)
	}
	return o
}

// data is a ConfigMap's data, or a Secret's data (base64-decoded, as
// `kubectl create secret --dry-run=client -o yaml` writes it) and
// stringData.
func (o *object) data() map[string]string {
	d := map[string]string{}
	for k, v := range o.Data {
		if o.Kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				b = []byte("(not base64: " + err.Error() + ")")
			}
			v = string(b)
		}
		d[k] = v
	}
	for k, v := range o.StringData {
		d[k] = v
	}
	return d
}

// spec decodes o's spec into v.
func (o *object) spec(t *testing.T, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%v: spec: %v", o, err)
	}
}

// podTemplate returns the pod template of a StatefulSet or Job, or nil.
func (o *object) podTemplate(t *testing.T) *podTemplate {
	t.Helper()
	switch o.Kind {
	case "StatefulSet":
		var s statefulSetSpec
		o.spec(t, &s)
		return &s.Template
	case "Job":
		var s jobSpec
		o.spec(t, &s)
		return &s.Template
	}
	return nil
}

var (
	loadOnce sync.Once
	loaded   *manifests
	loadErr  error
)

// theManifests are deploy/'s manifests; a parse error fails t.
func theManifests(t *testing.T) *manifests {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = loadManifests(".") })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// TestManifestsParse: every document parses and is a Kubernetes object with
// a unique name, in the example's Namespace.
func TestManifestsParse(t *testing.T) {
	m := theManifests(t)
	if len(m.objs) < 10 {
		t.Fatalf("only %d YAML documents under deploy/", len(m.objs))
	}
	m.mustGet(t, "Namespace", namespace)
	seen := map[string]*object{}
	for _, o := range m.objs {
		id := o.Kind + "/" + o.Metadata.Namespace + "/" + o.Metadata.Name
		if prev := seen[id]; prev != nil {
			t.Errorf("%v: also defined at %s:%d", o, prev.file, prev.line)
		}
		seen[id] = o
		if o.Kind != "Namespace" && o.Metadata.Namespace != namespace {
			t.Errorf("%v: namespace %q, want %q", o, o.Metadata.Namespace, namespace)
		}
	}
}

// TestReferences: what every pod mounts exists (ConfigMaps and their keys,
// Secrets, claims), every $(VAR) a command line names is defined, and
// every container runs the same rustorium image (the topics Job's rpk
// aside).
func TestReferences(t *testing.T) {
	m := theManifests(t)
	pods := 0
	image := ""
	for _, o := range m.objs {
		pt := o.podTemplate(t)
		if pt == nil {
			continue
		}
		pods++
		volumes := map[string]bool{}
		if o.Kind == "StatefulSet" {
			var s statefulSetSpec
			o.spec(t, &s)
			for _, c := range s.VolumeClaimTemplates {
				volumes[c.Metadata.Name] = true
			}
		}
		cmKeys := map[string]map[string]string{} // volume → the ConfigMap's data
		for _, v := range pt.Spec.Volumes {
			volumes[v.Name] = true
			switch {
			case v.ConfigMap != nil:
				cm := m.get("ConfigMap", v.ConfigMap.Name)
				if cm == nil {
					t.Errorf("%v: volume %s: no ConfigMap %q", o, v.Name, v.ConfigMap.Name)
					continue
				}
				cmKeys[v.Name] = cm.data()
				for _, it := range v.ConfigMap.Items {
					if _, ok := cm.Data[it.Key]; !ok {
						t.Errorf("%v: volume %s: ConfigMap %s has no key %q", o, v.Name, cm.Metadata.Name, it.Key)
					}
				}
			case v.Secret != nil:
				if m.get("Secret", v.Secret.SecretName) == nil {
					t.Errorf("%v: volume %s: no Secret %q", o, v.Name, v.Secret.SecretName)
				}
			case v.PersistentVolumeClaim != nil:
				if m.get("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil {
					t.Errorf("%v: volume %s: no PersistentVolumeClaim %q", o, v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
		if len(pt.Spec.Containers) == 0 {
			t.Errorf("%v: no containers", o)
		}
		for _, c := range append(pt.Spec.InitContainers, pt.Spec.Containers...) {
			if o.Metadata.Name != topicsJob {
				if image == "" {
					image = c.Image
				}
				if c.Image != image || !strings.Contains(path.Base(c.Image), "rustorium") {
					t.Errorf("%v: container %s: image %q, want the rustorium image of deploy/Dockerfile that the others run (%s)", o, c.Name, c.Image, image)
				}
			}
			for _, vm := range c.VolumeMounts {
				if !volumes[vm.Name] {
					t.Errorf("%v: container %s mounts %q, which is no volume of the pod", o, c.Name, vm.Name)
				}
				if data, ok := cmKeys[vm.Name]; ok && vm.SubPath != "" {
					if _, ok := data[vm.SubPath]; !ok {
						t.Errorf("%v: container %s mounts key %q of volume %s, which its ConfigMap lacks", o, c.Name, vm.SubPath, vm.Name)
					}
				}
			}
			defined := map[string]bool{}
			for _, e := range c.Env {
				defined[e.Name] = true
			}
			for _, a := range c.argv() {
				for _, ref := range kubeVarRE.FindAllStringSubmatch(a, -1) {
					if !defined[ref[1]] {
						t.Errorf("%v: container %s: $(%s) is not one of its env variables (Kubernetes would pass it on as is)", o, c.Name, ref[1])
					}
				}
			}
		}
	}
	if pods < 4 {
		t.Errorf("%d pod templates, want the nodes, the load workers, the merge and the topics", pods)
	}
}

// kubeVarRE is Kubernetes' $(VAR) reference in a command line ($(( … ))
// is shell arithmetic, which Kubernetes leaves alone).
var kubeVarRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// nodes is the StatefulSet of validators and its node container.
func nodes(t *testing.T, m *manifests) (*object, statefulSetSpec, container) {
	t.Helper()
	sts := m.mustGet(t, "StatefulSet", nodesName)
	var s statefulSetSpec
	sts.spec(t, &s)
	if len(s.Template.Spec.Containers) != 1 {
		t.Fatalf("%v: %d containers, want the node's", sts, len(s.Template.Spec.Containers))
	}
	return sts, s, s.Template.Spec.Containers[0]
}

// portOf is the port of a host:port flag value.
func portOf(t *testing.T, hostport string) int {
	t.Helper()
	i := strings.LastIndex(hostport, ":")
	p, err := strconv.Atoi(hostport[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("%q is not host:port", hostport)
	}
	return p
}

// TestNodesAndService: the headless Service is the StatefulSet's, selects
// its pods and publishes the ports the node's flags open; the node reads
// the cluster file and its key where the ConfigMap and Secret are mounted.
func TestNodesAndService(t *testing.T) {
	m := theManifests(t)
	sts, s, c := nodes(t, m)
	svc := m.get("Service", s.ServiceName)
	if svc == nil {
		t.Fatalf("%v: serviceName %q: no such Service", sts, s.ServiceName)
	}
	var ss serviceSpec
	svc.spec(t, &ss)
	if ss.ClusterIP != "None" {
		t.Errorf("%v: clusterIP %q, want None (headless: a DNS name per pod)", svc, ss.ClusterIP)
	}
	if !ss.PublishNotReadyAddresses {
		t.Errorf("%v: publishNotReadyAddresses is off: peers could not resolve each other before a quorum runs", svc)
	}
	for k, v := range ss.Selector {
		if s.Template.Metadata.Labels[k] != v {
			t.Errorf("%v: selector %s=%s does not select the pods of %v", svc, k, v, sts)
		}
	}
	for k, v := range s.Selector.MatchLabels {
		if s.Template.Metadata.Labels[k] != v {
			t.Errorf("%v: selector %s=%s does not match its pod template", sts, k, v)
		}
	}
	if s.PodManagementPolicy != "Parallel" {
		t.Errorf("%v: podManagementPolicy %q: the nodes must start together (Parallel)", sts, s.PodManagementPolicy)
	}
	argv := c.argv()
	if len(argv) < 2 || argv[0] != "rustorium" || argv[1] != "node" {
		t.Fatalf("%v: command %q, want rustorium node …", sts, argv)
	}
	// The ports the node opens are the Service's and the container's.
	for _, want := range []struct {
		flag, proto string
	}{{"listen", "UDP"}, {"api", "TCP"}, {"metrics", "TCP"}} {
		v := flag(argv, want.flag)
		if v == "" {
			t.Errorf("%v: no --%s", sts, want.flag)
			continue
		}
		port := portOf(t, v)
		found := false
		for _, p := range ss.Ports {
			found = found || (p.Port == port && p.Protocol == want.proto)
		}
		if !found {
			t.Errorf("%v: no %s port %d for --%s %s", svc, want.proto, port, want.flag, v)
		}
		found = false
		for _, p := range c.Ports {
			found = found || (p.ContainerPort == port && p.Protocol == want.proto)
		}
		if !found {
			t.Errorf("%v: no %s containerPort %d for --%s %s", sts, want.proto, port, want.flag, v)
		}
	}
	// --cluster is the ConfigMap's file, --key-file the Secret's.
	cfPath, keyPath := flag(argv, "cluster"), flag(argv, "key-file")
	for _, v := range s.Template.Spec.Volumes {
		mp, sub, ok := c.mountOf(v.Name)
		switch {
		case v.ConfigMap != nil && v.ConfigMap.Name == clusterCM:
			file := path.Join(mp, clusterKey) // the whole ConfigMap mounted as a folder
			if sub == clusterKey {
				file = mp
			}
			if !ok || file != cfPath {
				t.Errorf("%v: --cluster %s is not where ConfigMap %s's %s is mounted (%s, subPath %q)", sts, cfPath, clusterCM, clusterKey, mp, sub)
			}
		case v.Secret != nil && v.Secret.SecretName == keysSecret:
			if !ok || keyPath != path.Join(mp, "$(POD_NAME).key") {
				t.Errorf("%v: --key-file %s is not a key of Secret %s mounted at %s", sts, keyPath, keysSecret, mp)
			}
		}
	}
	if flag(argv, "id") != "$(POD_NAME)" {
		t.Errorf("%v: --id %q, want $(POD_NAME): the pods are the cluster file's nodes", sts, flag(argv, "id"))
	}
}

// TestClusterFile: the ConfigMap's cluster file is valid for the node
// (cluster.Parse), names every pod of the StatefulSet at its DNS name and
// QUIC port, and each pod's key in the Secret is the key of its entry.
func TestClusterFile(t *testing.T) {
	m := theManifests(t)
	sts, s, c := nodes(t, m)
	cm := m.mustGet(t, "ConfigMap", clusterCM)
	text, ok := cm.Data[clusterKey]
	if !ok {
		t.Fatalf("%v: no %s", cm, clusterKey)
	}
	cf, err := cluster.Parse(cm.file+": "+clusterKey, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Nodes) != s.Replicas {
		t.Errorf("%v: %d replicas, the cluster file has %d nodes", sts, s.Replicas, len(cf.Nodes))
	}
	if cf.ChainID != 1 {
		t.Errorf("%v: chain_id %d: rustorium loadgen signs for chain 1", cm, cf.ChainID)
	}
	port := portOf(t, flag(c.argv(), "listen"))
	keys := m.mustGet(t, "Secret", keysSecret).data()
	dir := t.TempDir()
	for i, nd := range cf.Nodes {
		pod := fmt.Sprintf("%s-%d", sts.Metadata.Name, i)
		if nd.ID != pod {
			t.Errorf("%v: nodes[%d].id %q, want the pod's name %s", cm, i, nd.ID, pod)
		}
		if want := fmt.Sprintf("%s.%s.%s.svc.cluster.local:%d", pod, s.ServiceName, sts.Metadata.Namespace, port); nd.Addr != want {
			t.Errorf("%v: nodes[%d].addr %q, want the pod's DNS name and QUIC port %s", cm, i, nd.Addr, want)
		}
		seed, ok := keys[nd.ID+".key"]
		if !ok {
			t.Errorf("Secret %s has no %s.key", keysSecret, nd.ID)
			continue
		}
		kf := filepath.Join(dir, nd.ID+".key")
		if err := os.WriteFile(kf, []byte(seed), 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := cluster.ReadKeyFile(kf)
		if err != nil {
			t.Errorf("Secret %s: %v", keysSecret, err)
			continue
		}
		// What the node checks when it starts: its key is its entry's.
		if _, err := cf.Settings(cluster.NodeOptions{ID: nd.ID, Key: key, Data: dir}); err != nil {
			t.Errorf("Secret %s: %v", keysSecret, err)
		}
	}
	if len(keys) != len(cf.Nodes) {
		t.Errorf("Secret %s has %d keys, the cluster file %d nodes", keysSecret, len(keys), len(cf.Nodes))
	}
}

// workerRE, targetRE and outRE read the load Job's sh arithmetic.
var (
	workerRE = regexp.MustCompile(`--worker "\$\(\( JOB_COMPLETION_INDEX \+ 1 \)\)/(\d+)"`)
	targetRE = regexp.MustCompile(`node=([a-z0-9-]+)-\$\(\( JOB_COMPLETION_INDEX % (\d+) \)\)\.([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local\n`)
	outRE    = regexp.MustCompile(`--out "([^"$]+)/w\$\(\( JOB_COMPLETION_INDEX \+ 1 \)\)"`)
	mergeRE  = regexp.MustCompile(`rustorium report merge ((?:\S+ )+)--out (\S+)`)
	waitRE   = regexp.MustCompile(`for w in ((?:w\d+ ?)+); do`)
)

// TestLoadAndMerge: the Indexed Job runs N workers at once, worker
// JOB_COMPLETION_INDEX+1 of N, spread over the StatefulSet's pods, each
// writing wI on the shared volume; the merge Job waits for and merges
// exactly w1 … wN; the scenario they mount is valid.
func TestLoadAndMerge(t *testing.T) {
	m := theManifests(t)
	sts, s, nodeC := nodes(t, m)
	job := m.mustGet(t, "Job", loadgenJob)
	var js jobSpec
	job.spec(t, &js)
	if js.CompletionMode != "Indexed" {
		t.Errorf("%v: completionMode %q, want Indexed (JOB_COMPLETION_INDEX)", job, js.CompletionMode)
	}
	if js.Completions == nil || js.Parallelism == nil || *js.Completions != *js.Parallelism {
		t.Fatalf("%v: completions and parallelism must be set and equal (the workers start together)", job)
	}
	n := *js.Completions
	c := js.Template.Spec.Containers[0]
	script := c.script()
	if script == "" {
		t.Fatalf("%v: not a sh -c script (Kubernetes' $(VAR) does no arithmetic)", job)
	}
	if got := workerRE.FindStringSubmatch(script); got == nil || got[1] != strconv.Itoa(n) {
		t.Errorf("%v: completions %d, but the script's --worker is %q", job, n, got)
	}
	if got := targetRE.FindStringSubmatch(script); got == nil {
		t.Errorf("%v: no node=<pod>-$(( JOB_COMPLETION_INDEX %% N )).<service>.<namespace>.svc.cluster.local", job)
	} else if got[1] != sts.Metadata.Name || got[2] != strconv.Itoa(s.Replicas) || got[3] != s.ServiceName || got[4] != sts.Metadata.Namespace {
		t.Errorf("%v: workers target %q, want pods %s-0 … %s-%d of Service %s.%s", job, got[0], sts.Metadata.Name, sts.Metadata.Name, s.Replicas-1, s.ServiceName, sts.Metadata.Namespace)
	}
	for _, want := range []string{
		fmt.Sprintf(`--target "$node:%d"`, portOf(t, flag(nodeC.argv(), "listen"))),
		fmt.Sprintf(`--api "http://$node:%d"`, portOf(t, flag(nodeC.argv(), "api"))),
		`--start-at "$START_AT"`,
		`rustorium loadgen ` + path.Join("/etc/rustorium", scenarioKey),
	} {
		if !strings.Contains(script, want) {
			t.Errorf("%v: the script lacks %s", job, want)
		}
	}
	if mp, sub, ok := c.mountOf("scenario"); !ok || sub != scenarioKey || mp != path.Join("/etc/rustorium", scenarioKey) {
		t.Errorf("%v: the scenario is not mounted at /etc/rustorium/%s", job, scenarioKey)
	}
	if got := outRE.FindStringSubmatch(script); got == nil || got[1] != resultsFolder {
		t.Errorf("%v: --out is not %s/w$(( JOB_COMPLETION_INDEX + 1 ))", job, resultsFolder)
	}
	if mp, _, ok := c.mountOf("results"); !ok || mp != resultsFolder {
		t.Errorf("%v: volume results is not mounted at %s", job, resultsFolder)
	}

	merge := m.mustGet(t, "Job", mergeJob)
	var ms jobSpec
	merge.spec(t, &ms)
	mc := ms.Template.Spec.Containers[0]
	mscript := mc.script()
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("%s/w%d", resultsFolder, i))
	}
	if got := mergeRE.FindStringSubmatch(mscript); got == nil {
		t.Errorf("%v: no rustorium report merge DIR... --out DIR", merge)
	} else if dirs := strings.Fields(got[1]); !slices.Equal(dirs, want) {
		t.Errorf("%v: merges %q, want the %d workers' folders %q", merge, dirs, n, want)
	}
	if got := waitRE.FindStringSubmatch(mscript); got == nil || len(strings.Fields(got[1])) != n {
		t.Errorf("%v: does not wait for the %d workers (for w in w1 … w%d)", merge, n, n)
	}
	if mp, _, ok := mc.mountOf("results"); !ok || mp != resultsFolder {
		t.Errorf("%v: volume results is not mounted at %s", merge, resultsFolder)
	}

	cm := m.mustGet(t, "ConfigMap", scenarioCM)
	sc, err := scenarios.Parse(cm.file+": "+scenarioKey, []byte(cm.Data[scenarioKey]))
	if err != nil {
		t.Fatal(err)
	}
	sc.EnsureDefaults()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, wl := range sc.Workload {
		if wl.Clients > 0 && wl.Clients < n {
			t.Errorf("%v: workload[%d] has %d closed-loop clients for %d workers", cm, i, wl.Clients, n)
		}
	}
}

// TestTopicsJob: the topics Job creates both topics of every shard of the
// cluster file, with its prefix, on its brokers.
func TestTopicsJob(t *testing.T) {
	m := theManifests(t)
	cf, err := cluster.Parse(clusterKey, []byte(m.mustGet(t, "ConfigMap", clusterCM).Data[clusterKey]))
	if err != nil {
		t.Fatal(err)
	}
	job := m.mustGet(t, "Job", topicsJob)
	var js jobSpec
	job.spec(t, &js)
	c := js.Template.Spec.Containers[0]
	script := c.script()
	if want := fmt.Sprintf("$(seq 0 %d)", cf.Shards-1); !strings.Contains(script, want) {
		t.Errorf("%v: does not loop over the cluster file's %d shards (%s)", job, cf.Shards, want)
	}
	for _, topic := range []string{"transactions", "blocks"} {
		if want := fmt.Sprintf(`"%s%s-$s"`, cf.TopicPrefix, topic); !strings.Contains(script, want) {
			t.Errorf("%v: does not create %s (topic_prefix %q)", job, want, cf.TopicPrefix)
		}
	}
	if got := c.env("BROKERS"); got != strings.Join(cf.Brokers, ",") {
		t.Errorf("%v: BROKERS %q, the cluster file's brokers are %q", job, got, cf.Brokers)
	}
}

// invocation is one rustorium command line found in a manifest or script.
type invocation struct {
	where string
	words []string // the words after the binary's name
}

// binRE finds the binary run with a command word after it: rustorium (or
// ./rustorium) or "$BIN", the ssh script's local binary.
var binRE = regexp.MustCompile(`(?:^|[\s"'(])(?:(?:\./)?rustorium|"\$BIN")\s+([a-z][a-z-]*(?:\s.*)?)$`)

// invocations are the rustorium command lines of a command-line text, one
// per shell command, backslash continuations joined, comment lines left out.
func invocations(where, text string) []invocation {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out []invocation
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, cmd := range regexp.MustCompile(`;|&&|\|\||\|`).Split(line, -1) {
			if g := binRE.FindStringSubmatch(cmd); g != nil {
				out = append(out, invocation{where: where, words: strings.Fields(g[1])})
			}
		}
	}
	return out
}

// flagRE is a long flag as written in a command line (quoted or with =).
var flagRE = regexp.MustCompile(`^["']?--([a-z][a-z0-9-]*)`)

// TestCommandsExist runs the binary built from this tree: every rustorium
// subcommand and --flag the manifests and the scripts use is in its help.
func TestCommandsExist(t *testing.T) {
	m := theManifests(t)
	var all []invocation
	for _, o := range m.objs {
		if pt := o.podTemplate(t); pt != nil {
			for _, c := range append(pt.Spec.InitContainers, pt.Spec.Containers...) {
				all = append(all, invocations(o.String(), strings.Join(c.argv(), " "))...)
			}
		}
	}
	scripts, err := filepath.Glob("*/*.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, invocations(s, string(b))...)
	}

	t.Logf("%d rustorium command lines in deploy/", len(all))
	h := &helper{bin: buildBinary(t), help: map[string]string{}}
	used := map[string]bool{} // "subcommand --flag", to check the examples are covered
	for _, inv := range all {
		var sub []string
		for _, w := range inv.words {
			if !slices.Contains(h.subcommands(t, sub), w) {
				break
			}
			sub = append(sub, w)
		}
		if len(sub) == 0 {
			t.Errorf("%s: rustorium %s: no such command", inv.where, strings.Join(inv.words, " "))
			continue
		}
		help := h.helpOf(t, sub)
		used[strings.Join(sub, " ")] = true
		for _, w := range inv.words[len(sub):] {
			f := flagRE.FindStringSubmatch(w)
			if f == nil {
				continue
			}
			if !regexp.MustCompile(`--` + regexp.QuoteMeta(f[1]) + `(\s|$)`).MatchString(help) {
				t.Errorf("%s: rustorium %s has no flag --%s", inv.where, strings.Join(sub, " "), f[1])
			}
			used[strings.Join(sub, " ")+" --"+f[1]] = true
		}
	}
	// The examples use these: a parser that found none would check nothing.
	for _, want := range []string{
		"node --cluster", "node --key-file", "node --id", "node --api", "node --metrics", "node keygen --out",
		"loadgen --worker", "loadgen --start-at", "loadgen --target", "loadgen --out", "report merge --out",
	} {
		if !used[want] {
			t.Errorf("no rustorium %s found in deploy/: the invocations were not read", want)
		}
	}
}

// helper runs `rustorium … --help`, once per subcommand.
type helper struct {
	bin  string
	help map[string]string
}

func (h *helper) helpOf(t *testing.T, sub []string) string {
	t.Helper()
	k := strings.Join(sub, " ")
	if s, ok := h.help[k]; ok {
		return s
	}
	out, err := exec.Command(h.bin, append(slices.Clone(sub), "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("rustorium %s --help: %v\n%s", k, err, out)
	}
	h.help[k] = string(out)
	return h.help[k]
}

// subcommands are the commands cobra lists under sub's help.
func (h *helper) subcommands(t *testing.T, sub []string) []string {
	t.Helper()
	help := h.helpOf(t, sub)
	_, list, ok := strings.Cut(help, "Available Commands:\n")
	if !ok {
		return nil
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var cmds []string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			cmds = append(cmds, f[0])
		}
	}
	return cmds
}

// buildBinary builds cmd/rustorium of this tree into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rustorium")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/rustorium").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestScripts: the shell scripts and the containers' sh -c scripts parse;
// the scripts pass shellcheck where it is installed.
func TestScripts(t *testing.T) {
	m := theManifests(t)
	for _, o := range m.objs {
		if pt := o.podTemplate(t); pt != nil {
			for _, c := range pt.Spec.Containers {
				if s := c.script(); s != "" {
					if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
						t.Errorf("%v: container %s: sh -n: %v\n%s", o, c.Name, err, out)
					}
				}
			}
		}
	}
	scripts, err := filepath.Glob("*/*.sh")
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) < 2 {
		t.Fatalf("scripts %q, want deploy/ssh's and deploy/k8s's", scripts)
	}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Log("shellcheck is not installed: the scripts were only parsed (apt-get install shellcheck)")
		return
	}
	if out, err := exec.Command(sc, scripts...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
