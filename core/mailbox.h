/*
 * mailbox.h - which domains are local and which local mailboxes exist
 *
 * Built once from the configuration (domains.local, mailboxes.users and
 * users_file); read-only afterwards and shared by all threads. Keys are
 * lower-case "local@domain" as made by smtp_addr_lookup_key().
 */
#ifndef SLUICE_MAILBOX_H
#define SLUICE_MAILBOX_H

struct config;
struct mailbox_table;

struct mailbox_table *mailbox_table_new(const struct config *);
void	mailbox_table_free(struct mailbox_table *);
int	mailbox_domain_is_local(const struct mailbox_table *, const char *);
int	mailbox_exists(const struct mailbox_table *, const char *key);

#endif
