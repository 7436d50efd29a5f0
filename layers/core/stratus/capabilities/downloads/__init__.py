"""Model downloads (seed 000): a Hub repository snapshotted into object storage by a container job."""
