#ifndef CAPDIAG_CPCAP_SHIM_H
#define CAPDIAG_CPCAP_SHIM_H
#include <pcap/pcap.h>
/* glibc's malloc_trim, which the Swift Glibc module does not export (FreeMemory.swift). */
#include <malloc.h>
#endif
