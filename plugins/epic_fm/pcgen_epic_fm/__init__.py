"""EPiC-FM for pcgen: conditional flow matching on straight paths with an EPiC velocity network."""
