"""Containers: the Docker and Swarm stack backends, gauntlet's images, a private dockerd."""
