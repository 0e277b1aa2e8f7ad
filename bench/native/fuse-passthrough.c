/*
 * fuse-passthrough: the floor of a libfuse 2 filesystem on this machine, for the metadata walk.
 *
 *   fuse-passthrough DIR MOUNTPOINT [-s]
 *
 * A read-only view of DIR through libfuse 2's high-level API, in C, like libfuse's own `fusexmp`
 * example: getattr is one lstat of the real file, readdir one pass over the real directory. It does
 * no other work per request, so a walk of it costs what libfuse 2 and the kernel cost per entry:
 * the round trip of one LOOKUP per name (libfuse 2 has no READDIRPLUS). Mounted with the options
 * dftfs mounts with (attr_timeout=1, entry_timeout=1, default_permissions); multi-threaded like
 * fuse-native's loop unless -s. Runs in the foreground, prints "mounted" once it serves, unmounts
 * on SIGTERM or SIGINT.
 */
#define FUSE_USE_VERSION 26
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;

/* The real path of a mount path, or -ENAMETOOLONG. */
static int real(char *out, const char *p) {
  int n = snprintf(out, PATH_MAX, "%s%s", root, p);
  return n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int fp_getattr(const char *p, struct stat *st) {
  char r[PATH_MAX];
  if (real(r, p)) return -ENAMETOOLONG;
  return lstat(r, st) == 0 ? 0 : -errno;
}

static int fp_readlink(const char *p, char *buf, size_t size) {
  char r[PATH_MAX];
  if (real(r, p)) return -ENAMETOOLONG;
  ssize_t n = readlink(r, buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

static int fp_readdir(const char *p, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi) {
  (void)off; (void)fi;
  char r[PATH_MAX];
  if (real(r, p)) return -ENAMETOOLONG;
  DIR *d = opendir(r);
  if (!d) return -errno;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) if (fill(buf, e->d_name, NULL, 0)) break;
  closedir(d);
  return 0;
}

static int fp_open(const char *p, struct fuse_file_info *fi) {
  char r[PATH_MAX];
  if (real(r, p)) return -ENAMETOOLONG;
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  int fd = open(r, O_RDONLY);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int fp_read(const char *p, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)p;
  ssize_t n = pread((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int fp_release(const char *p, struct fuse_file_info *fi) {
  (void)p;
  close((int)fi->fh);
  return 0;
}

static void *fp_init(struct fuse_conn_info *conn) {
  (void)conn;
  printf("mounted\n");
  fflush(stdout);
  return NULL;
}

static struct fuse_operations ops = {
  .getattr = fp_getattr, .readlink = fp_readlink, .readdir = fp_readdir,
  .open = fp_open, .read = fp_read, .release = fp_release, .init = fp_init,
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fuse-passthrough DIR MOUNTPOINT [-s]\n");
    return 2;
  }
  root = argv[1];
  int single = argc > 3 && strcmp(argv[3], "-s") == 0;
  char *args[] = { argv[0], argv[2], "-f", "-o", "ro,attr_timeout=1,entry_timeout=1,default_permissions,fsname=fuse-passthrough", single ? "-s" : NULL, NULL };
  return fuse_main(single ? 6 : 5, args, &ops, NULL);
}
