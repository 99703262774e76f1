/*
 * conf_yaml.h - a YAML file read into a small tree of positioned nodes
 *
 * API: conf_yaml_load() parses one file with libyaml into scalars,
 * sequences and mappings, each carrying the 1-based line and column where
 * it starts; conf_yaml_free() releases the tree; conf_yaml_get() looks a key
 * up in a mapping.
 * The tree is deliberately plain: anchors, aliases, non-scalar keys,
 * duplicate keys, NUL bytes in scalars and more than one document are all
 * rejected while loading, so the schema code never sees them.
 * Errors: -1 and "FILE:LINE:COL: what" in err.
 * Ownership: the caller owns the root and frees it with conf_yaml_free().
 * Private to conf/.
 */
#ifndef SLUICE_CONF_YAML_H
#define SLUICE_CONF_YAML_H

#include <stddef.h>

#define CONF_YAML_MAX_DEPTH	64
#define CONF_YAML_MAX_SIZE	(16UL * 1024 * 1024)

enum ynode_type {
	YNODE_SCALAR,
	YNODE_SEQUENCE,
	YNODE_MAPPING,
};

struct ynode {
	enum ynode_type	  type;
	unsigned long	  line;		/* 1-based */
	unsigned long	  col;		/* 1-based */
	char		 *value;	/* scalar text, NUL-terminated */
	int		  null;		/* plain "", "~" or "null" */
	struct ynode	**kids;		/* sequence: items; mapping: k,v,k,v */
	size_t		  nkids;
	size_t		  cap;
};

int		 conf_yaml_load(const char *path, struct ynode **root,
		    char *err, size_t errlen);
void		 conf_yaml_free(struct ynode *);
const struct ynode *conf_yaml_get(const struct ynode *map, const char *key);
const char	*conf_yaml_kind(const struct ynode *);

#endif
