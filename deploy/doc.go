// Package deploy holds the container packaging of raftlookupd and its test.
//
// There is no Go code to import here. The directory holds:
//
//   - Dockerfile, nsqd.Dockerfile, nsqadmin.Dockerfile: FROM scratch images
//     of static binaries built on the host (`make image`, `make nsq-images`);
//     no base image is ever pulled.
//   - docker-compose.yml: a three-node cluster on one network, with the
//     profiles nsq (nsqd and nsqadmin) and join (a fourth node).
//   - docker-compose.dns.yml: three services with one identical command
//     (-join raftlookupd:4162 -bootstrap-expect 3) and one network alias,
//     which form a cluster by DNS discovery; dns_test.go runs it on an
//     image of its own and checks one cluster, one leader, and a restart.
//   - compose_test.go: builds the images and drives the compose file through
//     leader loss, a network partition, rolling restarts, join and leave, and
//     a full down/up, with a real nsqd, nsqadmin and go-nsq consumer.
//     harness_test.go runs compose and docker; testdata/probe is a tiny HTTP
//     poller run inside a node's network namespace.
//   - kubernetes/: a StatefulSet of three nodes, a headless Service for
//     peers, a client Service and a PodDisruptionBudget. No cluster is
//     available to the tests; cmd/raftlookupd's TestKubernetesManifests
//     parses them and checks their flags and ports against the binary.
//
// The test needs a Docker engine and docker compose (plugin or v1); without
// them it fails rather than skips. Run it alone with `make test-deploy`.
package deploy
