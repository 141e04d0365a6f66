"""The residency audit: checks the live region and produces signed evidence (see residency/README.md)."""
