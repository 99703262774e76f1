/*
 * accept_reserve.h - answering clients when file descriptors run out
 * (accept_reserve.c).
 */
#ifndef SLUICE_ACCEPT_RESERVE_H
#define SLUICE_ACCEPT_RESERVE_H

/* accept_reserve_init - take the spare descriptor; -1 if none is free */
int	accept_reserve_init(void);
/*
 * accept_reserve_refuse - accept() failed with EMFILE or ENFILE on lfd:
 * spend the spare descriptor on one waiting client, answer it 421 and
 * close it. 1 when a client was refused (more may wait), 0 when none was
 * waiting, -1 when it cannot help (no spare: pause accepting instead).
 */
int	accept_reserve_refuse(int lfd, const char *listener);
void	accept_reserve_free(void);

#endif
