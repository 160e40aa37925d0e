package marathon

import (
	"slices"

	gomarathon "github.com/gambol99/go-marathon"

	"github.com/flock-paas/flock/deploy"
)

// place carries the descriptor's placement keys into app: constraints,
// and for a Docker app forcePullImage and BRIDGE networking.
//
// BRIDGE is written in Marathon 1.4's shape (container.docker.network and
// container.docker.portMappings, no portDefinitions), the one go-marathon
// v0.7.1 can express. Marathon 1.5 and later still accept it and migrate
// it to their own shape (networks: [{"mode": "container/bridge"}] and
// container.portMappings), which is what they answer with ("Migrating
// Tools to the 1.5 Networking API"); Flock reads only the tasks' host
// ports back, which both shapes report alike.
func place(app *gomarathon.Application, d deploy.Descriptor) {
	if len(d.Constraints) > 0 {
		cs := make([][]string, len(d.Constraints))
		for i, c := range d.Constraints {
			cs[i] = slices.Clone(c)
		}
		app.Constraints = &cs
	}
	// No constraints: the key is left out, Marathon's default is none.
	// A full update (partialUpdate=false) drops earlier ones.
	if app.Container == nil || app.Container.Docker == nil {
		return
	}
	docker := app.Container.Docker
	docker.SetForcePullImage(d.ForcePullImage)
	if d.Network != deploy.NetworkBridge {
		return
	}
	docker.Network = deploy.NetworkBridge
	pms := make([]gomarathon.PortMapping, len(d.PortMappings))
	for i, pm := range d.PortMappings {
		// hostPort 0: a port of the offer, as portDefinitions give in
		// HOST networking; the task's ports are the host ports.
		pms[i] = gomarathon.PortMapping{ContainerPort: pm.ContainerPort, HostPort: pm.HostPort, Protocol: pm.Protocol}
	}
	docker.PortMappings = &pms
	// Marathon refuses portDefinitions beside BRIDGE port mappings.
	app.PortDefinitions = &[]gomarathon.PortDefinition{}
}
