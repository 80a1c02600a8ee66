package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// No Kubernetes cluster is available to the tests. Instead, the manifests
// in deploy/kubernetes are read as the API server would, the container's
// command line is put together as the kubelet does (the image's entrypoint,
// then args with $(VAR) expanded from env), and parsed by this binary's own
// flag set; then every port and name the objects share is cross-checked.

const k8sDir = "../../deploy/kubernetes"

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

type k8sService struct {
	ClusterIP                string            `yaml:"clusterIP"`
	PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
	Selector                 map[string]string `yaml:"selector"`
	Ports                    []struct {
		Name       string    `yaml:"name"`
		Port       int       `yaml:"port"`
		TargetPort yaml.Node `yaml:"targetPort"`
	} `yaml:"ports"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string         `yaml:"name"`
		Value     *string        `yaml:"value"`
		ValueFrom map[string]any `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sStatefulSet struct {
	ServiceName         string `yaml:"serviceName"`
	Replicas            int    `yaml:"replicas"`
	PodManagementPolicy string `yaml:"podManagementPolicy"`
	Selector            struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Containers []k8sContainer `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	} `yaml:"volumeClaimTemplates"`
}

type k8sPDB struct {
	MaxUnavailable *int `yaml:"maxUnavailable"`
	Selector       struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
}

// readManifests decodes every document of every listed resource file.
func readManifests(t *testing.T) []k8sObject {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, filepath.Join(k8sDir, "kustomization.yaml"), &kust)
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(kust.Resources) != len(files)-1 {
		t.Errorf("kustomization.yaml lists %v; the directory has %d other files", kust.Resources, len(files)-1)
	}
	var objs []k8sObject
	for _, name := range kust.Resources {
		f, err := os.Open(filepath.Join(k8sDir, name))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			objs = append(objs, o)
		}
		f.Close()
	}
	return objs
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func decodeSpec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

// imageEntrypoint reads the exec-form ENTRYPOINT of deploy/Dockerfile.
func imageEntrypoint(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[(?:[^\]\\]|\\\n)*\])`).FindSubmatch(b)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no exec-form ENTRYPOINT")
	}
	var ep []string
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(m[1]), "\\\n", "")), &ep); err != nil {
		t.Fatalf("ENTRYPOINT: %v", err)
	}
	return ep
}

var k8sVarRe = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces $(VAR) as the kubelet does; a reference to a variable the
// container does not define is left as is, so the test can see it.
func expand(s string, env map[string]string) string {
	return k8sVarRe.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := env[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestKubernetesManifests(t *testing.T) {
	t.Setenv("RAFTLOOKUPD_ADMIN_TOKEN", "")
	objs := readManifests(t)
	var (
		sts      k8sStatefulSet
		stsName  string
		services = map[string]k8sService{}
		pdbs     []k8sPDB
	)
	for _, o := range objs {
		switch o.Kind {
		case "StatefulSet":
			decodeSpec(t, o, &sts)
			stsName = o.Metadata.Name
		case "Service":
			var s k8sService
			decodeSpec(t, o, &s)
			services[o.Metadata.Name] = s
		case "PodDisruptionBudget":
			var p k8sPDB
			decodeSpec(t, o, &p)
			pdbs = append(pdbs, p)
		default:
			t.Errorf("unexpected kind %s", o.Kind)
		}
	}
	if stsName == "" || len(services) != 2 || len(pdbs) != 1 {
		t.Fatalf("want one StatefulSet, two Services, one PodDisruptionBudget; got %q, %d, %d", stsName, len(services), len(pdbs))
	}
	if sts.Replicas != 3 || sts.PodManagementPolicy != "Parallel" {
		t.Errorf("replicas %d, podManagementPolicy %q; want 3, Parallel", sts.Replicas, sts.PodManagementPolicy)
	}
	podLabels := sts.Template.Metadata.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(sts.Selector.MatchLabels) {
		t.Errorf("StatefulSet selector %v does not select its pods %v", sts.Selector.MatchLabels, podLabels)
	}
	if p := pdbs[0]; !matches(p.Selector.MatchLabels) || p.MaxUnavailable == nil || *p.MaxUnavailable != 1 {
		t.Errorf("PodDisruptionBudget: selector %v, maxUnavailable %v; want the pods and 1", p.Selector.MatchLabels, p.MaxUnavailable)
	}
	if len(sts.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(sts.Template.Spec.Containers))
	}
	c := sts.Template.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("command %q replaces the image's entrypoint; use args", c.Command)
	}

	// Every pod's command line parses with this binary's flag set.
	const namespace = "nsq-prod"
	for i := range sts.Replicas {
		pod := fmt.Sprintf("%s-%d", stsName, i)
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.Value != nil:
				env[e.Name] = *e.Value
			case fmt.Sprint(e.ValueFrom) == "map[fieldRef:map[fieldPath:metadata.name]]":
				env[e.Name] = pod
			case fmt.Sprint(e.ValueFrom) == "map[fieldRef:map[fieldPath:metadata.namespace]]":
				env[e.Name] = namespace
			}
		}
		args := imageEntrypoint(t)[1:]
		for _, a := range c.Args {
			a = expand(a, env)
			if k8sVarRe.MatchString(a) {
				t.Fatalf("argument %q refers to a variable the container does not define", a)
			}
			args = append(args, a)
		}
		opts, err := parseFlags(args, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("pod %s: raftlookupd %q: %v", pod, args, err)
		}

		// The node's id is the pod name, its address the pod's stable name.
		peerName := func(pod string) string { return pod + "." + sts.ServiceName + "." + namespace + ".svc" }
		raftPort := portOf(t, opts.raftAddress)
		if opts.cluster.NodeID != pod || opts.broadcastAddress != peerName(pod) {
			t.Errorf("pod %s: node id %q, broadcast address %q", pod, opts.cluster.NodeID, opts.broadcastAddress)
		}
		if len(opts.cluster.Servers) != sts.Replicas {
			t.Errorf("pod %s: %d peers for %d replicas", pod, len(opts.cluster.Servers), sts.Replicas)
		}
		for j, p := range opts.cluster.Servers {
			other := fmt.Sprintf("%s-%d", stsName, j)
			if want := net.JoinHostPort(peerName(other), strconv.Itoa(raftPort)); p.ID != other || p.RaftAddress != want {
				t.Errorf("peer %d: %s=%s, want %s=%s", j, p.ID, p.RaftAddress, other, want)
			}
		}

		// Named container ports are the ports the flags listen on.
		named := map[string]int{}
		for _, p := range c.Ports {
			named[p.Name] = p.ContainerPort
		}
		for name, addr := range map[string]string{"tcp": opts.tcpAddress, "http": opts.httpAddress, "raft": opts.raftAddress} {
			if got, want := named[name], portOf(t, addr); got != want {
				t.Errorf("container port %q is %d; raftlookupd listens on %d (%s)", name, got, want, addr)
			}
		}
		if len(named) != 3 {
			t.Errorf("container ports %v, want tcp, http and raft", named)
		}
		resolve := func(what string, n yaml.Node) {
			t.Helper()
			if _, ok := named[n.Value]; ok {
				return
			}
			if v, err := strconv.Atoi(n.Value); err == nil {
				for _, p := range named {
					if p == v {
						return
					}
				}
			}
			t.Errorf("%s: port %q is none of the container's", what, n.Value)
		}
		for path, pr := range map[string]*k8sProbe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
			if pr == nil || pr.HTTPGet.Path != path {
				t.Errorf("want a probe on %s, got %+v", path, pr)
				continue
			}
			resolve("probe "+path, pr.HTTPGet.Port)
			if v := pr.HTTPGet.Port.Value; v != "http" && v != strconv.Itoa(named["http"]) {
				t.Errorf("probe %s on port %s, not the HTTP port", path, v)
			}
		}
		for name, s := range services {
			for _, p := range s.Ports {
				resolve("Service "+name+" port "+p.Name, p.TargetPort)
				if p.Port != named[p.TargetPort.Value] {
					t.Errorf("Service %s exposes %s as %d, the container as %d", name, p.Name, p.Port, named[p.TargetPort.Value])
				}
			}
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.MountPath == opts.cluster.DataDir && len(sts.VolumeClaimTemplates) == 1 && m.Name == sts.VolumeClaimTemplates[0].Metadata.Name {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("the data dir %s is not the volume claim's mount", opts.cluster.DataDir)
		}
	}

	// The peer Service is the StatefulSet's headless one and publishes pods
	// before they are ready; both Services select the pods.
	peers, ok := services[sts.ServiceName]
	if !ok || peers.ClusterIP != "None" || !peers.PublishNotReadyAddresses {
		t.Errorf("Service %q: want headless with publishNotReadyAddresses, got %+v", sts.ServiceName, peers)
	}
	for name, s := range services {
		if !matches(s.Selector) {
			t.Errorf("Service %s selector %v does not select the pods", name, s.Selector)
		}
	}
}
