# bash completion for pflask(1).
#
# Generic on purpose: the options, how their values complete and the
# closed sets of values come from the executable being completed
# (`pflask --complete=options`, `pflask --complete=KIND`; see
# lua/pflask/complete.lua), so that a new option or capability completes
# without editing this file. Only the shapes of the list values (--caps
# entries, --mount and --netif fields) are known here. Needs nothing from
# the bash-completion package.

# The words of KIND, one per line, from the pflask being completed.
_pflask_words()
{
	"$_pflask_exe" --complete="$1" 2>/dev/null
}

# Candidates for the value $1 of an option whose values complete as $2,
# each prefixed with $3, into _pflask_out; sets _pflask_nospace when a
# candidate continues (a field separator, a list).
_pflask_value()
{
	local v=$1 kind=$2 p=$3 head last w
	local -a list
	case $kind in
	dir) mapfile -t list < <(_pflask_compgen -d "$v") ;;
	file) mapfile -t list < <(_pflask_compgen -f "$v") ;;
	user) mapfile -t list < <(compgen -u -- "$v") ;;
	caps)
		# -all,+net_bind_service: complete the last entry, sign first.
		head="" last=$v
		[[ $v == *,* ]] && head=${v%,*}, last=${v##*,}
		_pflask_nospace=1
		if [[ $last == [+-]* ]]; then
			for w in $(_pflask_words caps); do
				[[ ${last:0:1}$w == "$last"* ]] && list+=("$head${last:0:1}$w")
			done
		else
			list=("$head+" "$head-")
		fi
		;;
	mount)
		# TYPE:PATH[:PATH...]: the type, then paths.
		_pflask_nospace=1
		if [[ $v != *[:,]* ]]; then
			for w in $(_pflask_words mount); do [[ $w == "$v"* ]] && list+=("$w:"); done
		else
			head=${v%[:,]*} last=${v##*[:,]}
			head=${v:0:${#head}+1}
			mapfile -t list < <(_pflask_compgen -f "$last")
			list=("${list[@]/#/$head}")
		fi
		;;
	netif)
		# DEV:NAME, macvlan:MASTER:NAME, ipvlan:MASTER:NAME, veth:OUT:IN.
		_pflask_nospace=1
		if [[ $v != *[:,]* ]]; then
			for w in $(_pflask_words netif) $(_pflask_words interfaces); do
				[[ $w == "$v"* ]] && list+=("$w:")
			done
		elif [[ $v =~ ^(macvlan|ipvlan)[:,][^:,]*$ ]]; then
			head=${v%%[:,]*} last=${v#*[:,]}
			head=${v:0:${#head}+1}
			for w in $(_pflask_words interfaces); do [[ $w == "$last"* ]] && list+=("$head$w:"); done
		fi
		;;
	recipe)
		for w in $(_pflask_words recipe); do [[ $w == "$v"* ]] && list+=("$w"); done
		[[ $v == */* || $v == *.lua ]] && mapfile -t list < <(_pflask_compgen -f "$v")
		;;
	none | "") ;;
	*) for w in $(_pflask_words "$kind"); do [[ $w == "$v"* ]] && list+=("$w"); done ;;
	esac
	for w in "${list[@]}"; do
		[[ -n $w ]] && _pflask_out+=("$p$w")
	done
}

_pflask_compgen()
{
	compgen "$1" -- "$2" 2>/dev/null
}

_pflask()
{
	local line=${COMP_LINE:0:COMP_POINT}
	local -a words
	read -ra words <<<"$line"
	local cur=""
	if [[ -n $line && $line != *[[:space:]] && ${#words[@]} -gt 0 ]]; then
		cur=${words[${#words[@]} - 1]}
		unset 'words[${#words[@]}-1]'
	fi
	local _pflask_exe=${words[0]:-pflask}
	[[ $_pflask_exe == "~/"* ]] && _pflask_exe=$HOME/${_pflask_exe#"~/"}
	local -A arg kind byshort
	local name a k r s
	while read -r name a k r s; do
		[[ $name == --* ]] || continue
		arg[$name]=$a kind[$name]=$k
		[[ -n $s ]] && byshort[$s]=$name
	done < <(_pflask_words options)

	# Where are we: after an option that wants the next word, or in the
	# command (after "--" or the first word that is no option).
	local -a _pflask_out=()
	local _pflask_nospace="" want="" i=1 n=${#words[@]} w j c
	while ((i < n)); do
		w=${words[i]}
		want=""
		if [[ $w == -- ]]; then
			want=command; i=$((i + 1)); break
		elif [[ $w == --*=* ]]; then
			:
		elif [[ $w == --* ]]; then
			[[ ${arg[$w]} == required ]] && want=$w
		elif [[ $w == -?* ]]; then
			for ((j = 1; j < ${#w}; j++)); do
				c=${byshort[-${w:j:1}]}
				if [[ -n $c && ${arg[$c]} != none ]]; then
					[[ $j -eq $((${#w} - 1)) && ${arg[$c]} == required ]] && want=$c
					break
				fi
			done
		else
			want=command; break
		fi
		if [[ -n $want ]]; then
			((i + 1 < n)) || break
			i=$((i + 2)); want=""; continue
		fi
		i=$((i + 1))
	done

	if [[ $want == command ]]; then
		if ((i >= n)); then
			mapfile -t _pflask_out < <(compgen -c -- "$cur")
		else
			mapfile -t _pflask_out < <(_pflask_compgen -f "$cur")
			compopt -o filenames 2>/dev/null
		fi
	elif [[ -n $want ]]; then
		_pflask_value "$cur" "${kind[$want]}" ""
	elif [[ $cur == --*=* ]]; then
		name=${cur%%=*}
		[[ -n ${arg[$name]} ]] && _pflask_value "${cur#*=}" "${kind[$name]}" "$name="
	elif [[ $cur == -* ]]; then
		for name in "${!arg[@]}"; do
			[[ $name == "$cur"* ]] || continue
			case ${arg[$name]} in
			required) _pflask_out+=("$name="); _pflask_nospace=1 ;;
			optional) _pflask_out+=("$name" "$name=") ;;
			*) _pflask_out+=("$name") ;;
			esac
		done
	else
		mapfile -t _pflask_out < <(compgen -c -- "$cur")
	fi

	# bash splits the word at the characters of COMP_WORDBREAKS (= and :
	# among them): the candidates replace only what follows the last one.
	local strip=$cur rest
	local brk=""
	[[ $COMP_WORDBREAKS == *=* ]] && brk+="="
	[[ $COMP_WORDBREAKS == *:* ]] && brk+=":"
	if [[ -n $brk && $cur == *["$brk"]* ]]; then
		rest=${cur##*["$brk"]}
		strip=${cur:0:${#cur}-${#rest}}
		_pflask_out=("${_pflask_out[@]#"$strip"}")
	fi
	COMPREPLY=("${_pflask_out[@]}")
	[[ -n $_pflask_nospace ]] && compopt -o nospace 2>/dev/null
	return 0
}

complete -F _pflask pflask
